"""Internal transfers without the site: the batch script (its header, the utilities' argv, and the script run by
bash with a stand-in `srun`, so hostile names meet a real shell and real tools), and the routes against a fake
compute service (parsing, what is forwarded, how compute's answers are shaped)."""

from __future__ import annotations

import posixpath
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common import files
from common.auth import Identity

SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
    xfer_partition: xferpart
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
"""
COMPUTE = "http://compute.test:5106"
HOSTILE = ["it's", "$(touch {c})", "`touch {c}`", "-rf", "--help", "a b", "x;touch {c}", "ü ∂ 漢", "a\\b", "h:p",
           '"; touch {c}; "', "*"]


@pytest.fixture(scope="module")
def internal() -> Any:
    from storage import internal as module

    return module


def script(internal: Any, op: str, source: str, target: str, **options: Any) -> str:
    options = {"dereference": False, "kind": "tar", "partial_tag": "tag", **options}
    return internal.batch_script(internal.plan(op, source, target, **options), job_name=f"{op}-job",
                                 time="02:00:00", partition="xfer", trace_id="rid-1")


def srun_lines(text: str) -> list[list[list[str]]]:
    """The argv of every `srun` of the script, as bash will split them."""
    found = []
    for line in text.splitlines():
        if line.startswith("srun "):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            steps: list[list[str]] = [[]]
            for word in lexer:
                if word == "&&":
                    steps.append([])
                else:
                    steps[-1].append(word)
            assert all(step[:3] == ["srun", "-n", "$SLURM_NTASKS"] for step in steps)
            found.append([step[3:] for step in steps])
    return found


def test_the_contract_header_and_body(internal):
    text = internal.batch_script(internal.plan("cp", "/a", "/b"), job_name="my.job", time="1-02:03:04",
                                 partition="xfer", trace_id="rid-1", dependency="42")
    lines = text.splitlines()
    assert lines[:9] == [
        "#!/bin/bash -l",
        "#SBATCH --job-name=my.job",
        "#SBATCH --time=1-02:03:04",
        "#SBATCH --error=job-%j.err",
        "#SBATCH --output=job-%j.out",
        "#SBATCH --ntasks=1",
        "#SBATCH --partition=xfer",
        "#SBATCH --dependency=afterok:42",
        "",
    ]
    assert "echo Trace ID: rid-1" in lines
    assert "srun -n $SLURM_NTASKS cp --force -dR --preserve=all -- /a /b" in lines
    assert lines[-1] == "exit $status"
    assert "dependency" not in script(internal, "cp", "/a", "/b")
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


@pytest.mark.parametrize("hostile", [h.format(c="canary") for h in HOSTILE])
def test_every_operation_runs_the_utilities_argv(internal, hostile):
    source, target = f"/home/alice/{hostile}", hostile
    assert srun_lines(script(internal, "cp", source, target)) == [[files.Copy(source, target).argv()]]
    assert srun_lines(script(internal, "mv", source, target)) == [[files.Rename(source, target).argv()]]
    assert srun_lines(script(internal, "rm", "", target)) == [[files.Remove(target).argv()]]
    assert srun_lines(script(internal, "extract", source, target, kind="zip")) == [
        [files.Extract(source, target, "zip").argv()]]
    assert srun_lines(script(internal, "rsync", source, target)) == [
        [["rsync", "-av", "--", source, internal.local(target)]]]
    partial = posixpath.join(posixpath.dirname(target), ".firecrest-tag.partial")
    assert srun_lines(script(internal, "compress", source, target, dereference=True)) == [
        [files.Compress(source, partial, True).argv(), files.Rename(partial, target).argv()]]


def test_rsync_keeps_colon_names_local(internal):
    assert internal.local("host:path") == "./host:path"
    assert internal.local("rsync://h/p") == "./rsync://h/p"
    assert internal.local("/abs/host:path") == "/abs/host:path"
    assert internal.local("dir/a:b") == "dir/a:b"


@pytest.mark.parametrize(("key", "value"), [("job_name", "a\nb"), ("job_name", "a b"), ("time", "1;id"),
                                            ("partition", "x\n#SBATCH --uid=0"), ("dependency", "1 --uid=0")])
def test_the_builder_refuses_unsafe_directive_values(internal, key, value):
    kwargs = {"job_name": "j", "time": "10", "partition": "xfer", "trace_id": "r", key: value}
    with pytest.raises(ValueError, match="unsafe"):
        internal.batch_script(internal.plan("rm", "", "/x"), **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# The script itself under bash, with real tools (srun stands in for the node: it runs its command)


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Any]:
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/sh\n[ "$1" = -n ] && [ "$2" = 1 ] || exit 99\nshift 2\nexec "$@"\n')
    srun.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "t",
           "LC_ALL": "C.UTF-8"}
    return {"home": home, "env": env, "cwd": tmp_path}


def run_job(node: dict[str, Any], text: str) -> subprocess.CompletedProcess:
    path = node["cwd"] / "job.sh"
    path.write_text(text)
    # Not `bash -l` (the shebang): the test machine's profile is no part of what is tested.
    return subprocess.run(["bash", str(path)], cwd=node["cwd"], env=node["env"], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def canary(node: dict[str, Any]) -> Iterator[str]:
    """A bare name: a hostile name that ran would create it in the job's directory (the caller's home)."""
    name = f"canary-{uuid.uuid4().hex}"
    yield name
    assert not (node["home"] / name).exists() and not (node["cwd"] / name).exists(), "a hostile name was executed"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_are_copied_moved_and_removed_literally(internal, node, canary, hostile):
    name = hostile.format(c=canary)
    home: Path = node["home"]
    (home / name).write_text("payload")
    copy = f"copy of {name}"  # relative: the job works in the caller's home
    assert run_job(node, script(internal, "cp", name, copy)).returncode == 0
    assert (home / copy).read_text() == "payload"
    assert run_job(node, script(internal, "rsync", name, f"{copy}.rsync")).returncode == 0
    assert (home / f"{copy}.rsync").read_text() == "payload"
    assert run_job(node, script(internal, "mv", copy, f"{copy}.moved")).returncode == 0
    assert not (home / copy).exists() and (home / f"{copy}.moved").read_text() == "payload"
    assert run_job(node, script(internal, "rm", "", name)).returncode == 0
    assert not (home / name).exists()


# GNU tar would unquote backslash escapes in member names and read an archive name with a colon before its first
# slash as host:file: the utilities' argv (utilities/commands.py) says --no-unquote and --force-local.
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_are_compressed_and_extracted_literally(internal, node, canary, hostile):
    name = hostile.format(c=canary)
    home: Path = node["home"]
    (home / name).write_text("payload")
    assert run_job(node, script(internal, "compress", name, f"{name}.tar.gz")).returncode == 0
    assert not list(home.glob(".firecrest-*"))
    (home / "out").mkdir()
    assert run_job(node, script(internal, "extract", f"{name}.tar.gz", "out")).returncode == 0
    assert (home / "out" / name).read_text() == "payload"


def test_a_failed_command_fails_the_job_and_leaves_no_partial_archive(internal, node):
    result = run_job(node, script(internal, "cp", "missing", "x"))
    assert result.returncode != 0 and "missing" in result.stderr
    assert "finished on" in result.stdout  # the closing echo still runs
    result = run_job(node, script(internal, "compress", "missing", "a.tar.gz"))
    assert result.returncode != 0
    assert not (node["home"] / "a.tar.gz").exists() and not list(node["home"].glob(".firecrest-*"))


# ---------------------------------------------------------------------------------------------------------------
# Routes, against a fake compute


class FakeReply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self.body = status, body

    def json(self) -> Any:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


@pytest.fixture
def app(internal, monkeypatch):
    from common import auth
    from common.app import create_app
    from common.config import parse

    monkeypatch.setattr(auth.TokenValidator, "validate",
                        lambda self, token, allow_expired=False: Identity("alice", token, {}))
    return create_app("storage-test", [internal.internal], parse(SITE, {"FIRECREST_INTERNAL_COMPUTE_URL": COMPUTE}))


@pytest.fixture
def compute(internal, monkeypatch) -> dict[str, Any]:
    """Records what the route sends to compute; `reply` (a FakeReply or an exception) is what it answers."""
    state: dict[str, Any] = {"calls": [], "reply": FakeReply(201, {"success": "Task created", "task_id": "t1",
                                                                   "task_url": "/tasks/t1"})}

    def post(url: str, **kwargs: Any) -> FakeReply:
        state["calls"].append({"url": url, **kwargs})
        if isinstance(state["reply"], Exception):
            raise state["reply"]
        return state["reply"]

    monkeypatch.setattr(internal.requests, "post", post)
    return state


def call(app, op: str, machine: str | None = "cluster", **form: str):
    headers = {"Authorization": "Bearer tok-alice", "X-Request-ID": "rid-42"}
    if machine:
        headers["X-Machine-Name"] = machine
    return app.test_client().post(f"/xfer-internal/{op}", data=form, headers=headers)


def sent_script(compute: dict[str, Any]) -> str:
    name, content = compute["calls"][-1]["files"]["file"]
    assert name.endswith(".sh")
    return content.decode()


def test_a_submission_goes_to_compute_as_the_caller(app, compute):
    reply = call(app, "cp", sourcePath="/home/alice/a", targetPath="/home/alice/b", account="project-a",
                 stageOutJobId="17")
    assert reply.status_code == 201 and reply.get_json() == {"success": "Task created", "task_id": "t1"}
    sent = compute["calls"][-1]
    assert sent["url"] == f"{COMPUTE}/jobs/upload" and sent["timeout"]
    assert sent["headers"] == {"Authorization": "Bearer tok-alice", "X-Machine-Name": "cluster",
                               "X-Request-ID": "rid-42"}
    assert sent["data"] == {"account": "project-a"}
    text = sent_script(compute)
    for line in ("#SBATCH --job-name=cp-job", "#SBATCH --time=02:00:00", "#SBATCH --partition=xferpart",
                 "#SBATCH --dependency=afterok:17", "echo Trace ID: rid-42",
                 "srun -n $SLURM_NTASKS cp --force -dR --preserve=all -- /home/alice/a /home/alice/b"):
        assert line in text.splitlines()


def test_defaults_and_options(app, compute):
    assert call(app, "rm", targetPath="/x").status_code == 201
    text = sent_script(compute)
    assert "#SBATCH --job-name=rm-job" in text and "dependency" not in text and compute["calls"][-1]["data"] == {}
    assert call(app, "compress", sourcePath="/d", targetPath="/d.tgz", dereference="true").status_code == 201
    assert " --dereference " in sent_script(compute)
    assert call(app, "extract", sourcePath="/a.bin", targetPath="/o", extension=".zip").status_code == 201
    assert "unzip -o -q /a.bin -d /o" in sent_script(compute)
    assert call(app, "extract", sourcePath="/a.tar.gz", targetPath="/o", type="auto").status_code == 201
    assert "tar --force-local -xf /a.tar.gz -C /o" in sent_script(compute)
    assert call(app, "rsync", sourcePath="/a", targetPath="/b", jobName="my-job_1.x+y",
                time="30").status_code == 201
    assert "#SBATCH --job-name=my-job_1.x+y" in sent_script(compute)
    assert "#SBATCH --time=30" in sent_script(compute)


@pytest.mark.parametrize("value", ["30", "30:00", "02:00:00", "1-0", "1-02:00", "1-02:03:04", "0"])
def test_slurm_time_formats(app, compute, value):
    assert call(app, "rm", targetPath="/x", time=value).status_code == 201
    assert f"#SBATCH --time={value}\n" in sent_script(compute)


@pytest.mark.parametrize("value", ["1:2:3:4", "abc", "1-", "-1", "1h", "1:", "1-2-3", "١٢", "02:00:00 --uid=0"])
def test_unsupported_time_formats(app, compute, value):
    reply = call(app, "rm", targetPath="/x", time=value)
    assert reply.status_code == 400 and reply.get_json()["error"] == "Not supported time format"
    assert not compute["calls"]


@pytest.mark.parametrize("value", ["-x", "a b", "a'b", "$(id)", "a/b", "x" * 65, "ü", "a,b", "a=b"])
def test_unsafe_job_names_are_refused(app, compute, value):
    reply = call(app, "rm", targetPath="/x", jobName=value)
    assert reply.status_code == 400 and "'jobName'" in reply.get_json()["error"]
    assert not compute["calls"]


@pytest.mark.parametrize("value", ["abc", "1;2", "1 2", "-1", "1,2", "$(id)"])
def test_invalid_stage_out_job_ids_are_refused(app, compute, value):
    reply = call(app, "cp", sourcePath="/a", targetPath="/b", stageOutJobId=value)
    assert reply.status_code == 400 and "stageOutJobId" in reply.get_json()["error"]
    assert not compute["calls"]


@pytest.mark.parametrize(("op", "form", "missing"), [
    ("cp", {"sourcePath": "/a"}, "targetPath"), ("rm", {}, "targetPath"), ("mv", {"targetPath": "/b"}, "sourcePath"),
    ("extract", {"sourcePath": "/a.rar", "targetPath": "/o"}, None),
    ("cp", {"sourcePath": "/a", "targetPath": "/b\n"}, None),
    ("cp", {"sourcePath": "/a", "targetPath": "/b" * 3000}, None),
])
def test_parameter_errors(app, compute, op, form, missing):
    reply = call(app, op, **form)
    assert reply.status_code == 400, reply.get_json()
    if missing:
        assert reply.get_json()["error"] == f"'{missing}' not specified"
    assert not compute["calls"]


def test_machine_errors(app, compute):
    unknown = call(app, "cp", machine="nowhere", sourcePath="/a", targetPath="/b")
    assert unknown.status_code == 400
    assert unknown.headers["X-Machine-Does-Not-Exists"] == "Machine does not exists"
    assert "X-Machine-Does-Not-Exist" in unknown.headers
    assert call(app, "cp", machine=None, sourcePath="/a", targetPath="/b").status_code == 400
    assert not compute["calls"]


def test_a_refused_submission_is_400_with_x_sbatch_error(app, compute):
    compute["reply"] = FakeReply(400, {"description": "Invalid account", "error": "'account' is empty"})
    reply = call(app, "cp", sourcePath="/a", targetPath="/b", account="")
    assert compute["calls"][-1]["data"] == {"account": ""}  # compute judges it
    assert reply.status_code == 400 and reply.get_json()["error"] == "'account' is empty"
    assert reply.headers["X-Sbatch-Error"] == "Invalid account"
    compute["reply"] = FakeReply(400, {"description": "Batch file is empty"})
    reply = call(app, "cp", sourcePath="/a", targetPath="/b")
    assert reply.get_json()["error"] == "Batch file is empty"
    assert reply.headers["X-Sbatch-Error"] == "Batch file is empty"


@pytest.mark.parametrize("answer", [None, 503, 500, 200, "not json"])
def test_compute_down_is_503(app, compute, answer):
    import requests

    if answer is None:
        compute["reply"] = requests.ConnectionError("refused")
    elif answer == "not json":
        compute["reply"] = FakeReply(201, ValueError("no JSON"))
    else:
        compute["reply"] = FakeReply(answer, {"description": "Task store unavailable"})
    reply = call(app, "cp", sourcePath="/a", targetPath="/b")
    assert reply.status_code == 503 and "X-Sbatch-Error" not in reply.headers
