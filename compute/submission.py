"""A job's submission on the cluster, as the caller: the compute task `submit`.

A task that runs again after a restart first looks for a job tagged with its task id (sbatch's comment) before it
calls sbatch, so nothing is submitted twice. An uploaded script runs in a directory of its own: if one was made
ahead (workdirs.py), sbatch reads the script on its standard input while the same command that keeps its copy in
that directory makes the directories of the next submissions, both at once; otherwise that command runs first.
"""

from __future__ import annotations

import base64
import posixpath
import threading
from typing import Any

from common.engine import TaskRun
from common.errors import FirecrestError
from common.files import WriteFiles
from common.slurm.jobfiles import JobFiles
from common.slurm.jobs import FindTagged
from common.slurm.submit import Submit

from .workdirs import Workdirs

INFO_RETURNED = "Job info returned successfully"
NOT_AVAILABLE = "Not available"


class Submission:
    """The `submit` operation, with the directories this process made ahead."""

    def __init__(self, workdirs: Workdirs) -> None:
        self.workdirs = workdirs

    def __call__(self, task: TaskRun, args: dict[str, Any]) -> dict[str, Any]:
        jobid = task.run(FindTagged(task.task_id)) if task.resumed else None
        stored: FirecrestError | None = None
        if "script" in args:
            base = task.remote.site.systems[task.system].compute_base_fs
            where = posixpath.join(task.user.username, "firecrest", task.task_id)
            workdir, script = posixpath.join(base, where), posixpath.join(base, where, args["filename"])
            if jobid is None:
                jobid, stored = self._upload(task, args, base, posixpath.join(where, args["filename"]), workdir)
        else:
            script = args["path"]
            workdir = posixpath.dirname(script) or "/"
            if jobid is None:
                jobid = _sbatch(task, args, script, workdir)
        files, extra = _submitted_files(task, jobid, script, workdir, args)
        if stored is not None:
            files["job_file"] = NOT_AVAILABLE
            extra = f"The job was submitted, but its script could not be kept in {workdir}: {stored.error}"
        return {"result": "Job submitted", "jobid": jobid, **files, "job_data_out": "", "job_data_err": "",
                "job_info_extra": extra}

    def _upload(self, task: TaskRun, args: dict[str, Any], base: str, name: str,
                workdir: str) -> tuple[str, FirecrestError | None]:
        """(job id, why the script's copy could not be kept, if so)."""
        user, content = task.user.username, base64.b64decode(args["script"])
        ahead = self.workdirs.plan(task.system, user)
        write = WriteFiles(base, {name: content}, [posixpath.join(user, "firecrest", i) for i in ahead])
        if not args.get("made_ahead") or task.resumed:
            try:
                task.run(write, stdin=write.payload())
            except BaseException:
                self.workdirs.made(task.system, user, ahead, ok=False)
                raise
            self.workdirs.made(task.system, user, ahead, ok=True)
            return _sbatch(task, args, None, workdir, content), None
        failed: list[FirecrestError] = []

        def keep_copy() -> None:
            try:
                task.run(write, stdin=write.payload())
            except FirecrestError as e:
                failed.append(e)
            self.workdirs.made(task.system, user, ahead, ok=not failed)

        copy = threading.Thread(target=keep_copy, name=f"copy-{task.task_id}", daemon=True)
        copy.start()
        try:
            jobid = _sbatch(task, args, None, workdir, content)
        finally:
            copy.join()
        return jobid, failed[0] if failed else None


def _sbatch(task: TaskRun, args: dict[str, Any], script: str | None, workdir: str,
            content: bytes | None = None) -> str:
    task.before_change()
    submit = Submit(script, workdir, task.task_id, args.get("account"), args.get("env"), args.get("dependency", ""))
    return task.run(submit, stdin=content)


def _submitted_files(task: TaskRun, jobid: str, script: str, workdir: str,
                     args: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The job's script and output files: known without asking Slurm when the script names no output of its own
    (Slurm's default, `slurm-<id>.out` in the working directory, for both), else from scontrol."""
    if args.get("default_output") and posixpath.isabs(script) and posixpath.normpath(script) == script:
        out = posixpath.join(workdir, f"slurm-{jobid}.out")
        return {"job_file": script, "job_file_out": out, "job_file_err": out}, INFO_RETURNED
    try:
        files = task.run(JobFiles(jobid))
    except FirecrestError as e:
        return {"job_file": NOT_AVAILABLE, "job_file_out": NOT_AVAILABLE, "job_file_err": NOT_AVAILABLE}, e.error
    if "script" in args:  # sbatch read it on its standard input: Slurm knows no file
        files["job_file"] = script
    return files, INFO_RETURNED
