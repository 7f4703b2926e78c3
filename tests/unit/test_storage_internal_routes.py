"""Internal transfers' routes (storage/internal_routes.py) against a fake compute service: parsing, what is
forwarded, how compute's answers are shaped."""

from __future__ import annotations

from typing import Any

import pytest
from test_storage_internal_jobs import SITE

from common.auth import Identity

COMPUTE = "http://compute.test:5106"


@pytest.fixture(scope="module")
def internal() -> Any:
    from storage import internal_routes as module

    return module


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
