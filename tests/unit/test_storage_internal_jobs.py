"""Internal transfers' batch jobs (storage/internal_jobs.py) without the site: the script's header, the utilities'
argv, and the script run by bash with a stand-in `srun`, so hostile names meet a real shell and real tools."""

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

SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
    xfer_partition: xferpart
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
"""
HOSTILE = ["it's", "$(touch {c})", "`touch {c}`", "-rf", "--help", "a b", "x;touch {c}", "ü ∂ 漢", "a\\b", "h:p",
           '"; touch {c}; "', "*"]


@pytest.fixture(scope="module")
def internal() -> Any:
    from storage import internal_jobs as module

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
