"""What the job pages do with the API: submit a script, list the queue, cancel; each follows its task to the end."""

from __future__ import annotations

import re
from typing import Any

from . import tasks_follow
from .api import Api, ApiError

JOB_ID = re.compile(r"\d{1,18}(\+\d{1,9}|_\d{1,9})?")
SYSTEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SCRIPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_SCRIPT = 64 * 1024  # bytes: a batch script, not a data file
JOB_FIELDS = ("jobid", "name", "state", "partition", "start_time", "time", "nodelist", "job_file_out")

EXAMPLES: dict[str, tuple[str, str]] = {
    "hello": ("Hello", "#!/bin/bash\n#SBATCH --job-name=hello\n#SBATCH --time=00:05:00\n\n"
                       "echo \"hello from $(hostname)\"\ndate\n"),
    "count": ("Count slowly", "#!/bin/bash\n#SBATCH --job-name=count\n#SBATCH --time=00:05:00\n\n"
                              "for i in $(seq 1 10); do\n    echo \"step $i\"\n    sleep 1\ndone\n"),
    "long": ("Long (cancel me)", "#!/bin/bash\n#SBATCH --job-name=long\n#SBATCH --time=00:30:00\n\n"
                                 "echo started\nsleep 1200\necho never\n"),
    "fail": ("Fails with exit 3", "#!/bin/bash\n#SBATCH --job-name=fail\n\necho 'about to fail' >&2\nexit 3\n"),
}


def system(value: str | None) -> str:
    if not value or not SYSTEM.fullmatch(value):
        raise ApiError(400, "choose a system")
    return value


def job_id(value: str) -> str:
    if not JOB_ID.fullmatch(value):
        raise ApiError(400, f"'{value[:24]}' is not a job id")
    return value


def script_name(value: str | None) -> str:
    name = (value or "").strip() or "job.sh"
    if not SCRIPT_NAME.fullmatch(name):
        raise ApiError(400, "the script's name may hold letters, digits, '.', '_' and '-' only")
    return name


def systems(client: Api) -> list[str]:
    """The site's systems (X-Machine-Name values), as GET /status/systems lists them."""
    out = client.get("/status/systems").json().get("out") or []
    return [str(s["system"]) for s in out if isinstance(s, dict) and isinstance(s.get("system"), str)]


def submit(client: Api, machine: str, script: str, name: str) -> dict[str, Any]:
    """sbatch the script (POST /compute/jobs/upload); its task ends with the job id or sbatch's refusal."""
    body = script.replace("\r\n", "\n").encode()
    if not body.strip():
        raise ApiError(400, "the script is empty")
    if len(body) > MAX_SCRIPT:
        raise ApiError(400, f"the script is larger than {MAX_SCRIPT // 1024} KiB")
    answer = client.post("/compute/jobs/upload", files={"file": (name, body, "text/x-shellscript")},
                         machine=machine).json()
    tid = tasks_follow.created(answer)
    task = tasks_follow.until(client, tid, {"200", "400"})
    data = task.get("data")
    if str(task.get("status")) == "200" and isinstance(data, dict) and data.get("jobid"):
        return {"task_id": tid, "jobid": str(data["jobid"]), "system": machine,
                "job_file_out": data.get("job_file_out", "")}
    if str(task.get("status")) >= "200":
        raise tasks_follow.failed(task, "sbatch refused the script")
    return {"task_id": tid, "jobid": None, "system": machine, "pending": task.get("description", "")}


def queue(client: Api, machine: str) -> list[dict[str, Any]]:
    """The user's jobs in the queue (GET /compute/jobs, the caller's only), newest first."""
    tid = tasks_follow.created(client.get("/compute/jobs", machine=machine).json())
    task = tasks_follow.until(client, tid, {"200", "400"})
    if str(task.get("status")) != "200":
        raise tasks_follow.failed(task, "the queue could not be listed")
    data = task.get("data") or {}
    jobs = [{k: str(job.get(k, "")) for k in JOB_FIELDS} for job in data.values() if isinstance(job, dict)]
    return sorted(jobs, key=lambda j: _order(j["jobid"]), reverse=True)


def _order(jobid: str) -> tuple[int, str]:
    head = re.match(r"\d+", jobid)
    return (int(head.group()) if head else -1, jobid)


def cancel(client: Api, machine: str, jobid: str) -> dict[str, Any]:
    """scancel (DELETE /compute/jobs/{jobid}); the task ends 200, or 400 with scancel's words."""
    tid = tasks_follow.created(client.delete(f"/compute/jobs/{job_id(jobid)}", machine=machine).json())
    task = tasks_follow.until(client, tid, {"200", "400"})
    if str(task.get("status")) != "200" and str(task.get("status")) >= "200":
        raise tasks_follow.failed(task, "the job could not be cancelled")
    return {"task_id": tid, "jobid": jobid, "status": task.get("status")}
