"""Background work of compute tasks, and its recovery after a restart.

A request creates its task (with a lease) and hands the operation to this process's thread pool; the outcome is
recorded with the tasks service. What the operation needs (arguments, the caller's token) is kept, sealed, in
the task's private part. If this process dies, the lease runs out and any compute process claims the task and
runs it again: reads simply run again, and a submission first asks Slurm whether the job already exists (each
job carries its task id in its comment), so nothing is submitted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from common.auth import Identity
from common.commands import Command, T
from common.errors import CertificateError, FirecrestError
from common.remote import run_as
from common.tasks import OutcomeTooLarge, TaskGone, TasksClient, new_work, work_identity

log = logging.getLogger("firecrest.compute")

LEASE_S = 15.0  # a task not finished by its process within this is claimed by another one
# A step that changes the cluster (sbatch) starts only with this much lease left: it is bounded by the remote
# timeout of a few seconds, so it never overlaps with a recovery of the same task.
SAFE_MARGIN_S = 10.0
RECOVERY_INTERVAL_S = 5.0


class LeaseLost(Exception):
    """Too little of the lease is left for a step that changes the cluster: leave the task to recovery."""


@dataclass
class Job:
    """One run of one task's operation: who, where, and the lease it runs under."""

    task_id: str
    user: Identity
    system: str
    request_id: str
    deadline: float  # time.monotonic() when the lease runs out
    resumed: bool

    def run(self, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
        return run_as(self.user, self.system, command, self.request_id, stdin=stdin, max_output=max_output)

    def before_change(self) -> None:
        if time.monotonic() > self.deadline - SAFE_MARGIN_S:
            raise LeaseLost(self.task_id)


Operation = Callable[[Job, dict[str, Any]], Any]


class Runner:
    def __init__(self, tasks: TasksClient, operations: dict[str, Operation], workers: int = 16) -> None:
        self.tasks = tasks
        self.operations = operations
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="compute-task")
        self._recovery: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, user: Identity, system: str, op: str, args: dict[str, Any], request_id: str) -> str:
        """Create the task and start its work; returns the task id at once."""
        self.ensure_recovery()
        work = new_work(user, system, op, args, request_id)
        task_id, holder = self.tasks.create_held(user, "compute", work, LEASE_S)
        self.pool.submit(self._execute, task_id, work, time.monotonic() + LEASE_S, False, holder)
        return task_id

    def _execute(self, task_id: str, work: dict[str, Any], deadline: float, resumed: bool, holder: str) -> None:
        user = work_identity(work)
        job = Job(task_id, user, work["system"], work.get("request_id", ""), deadline, resumed)
        try:
            status, data = "200", self.operations[work["op"]](job, work["args"])
        except LeaseLost:
            log.warning("task %s: lease nearly over, left to recovery", task_id)
            return
        except CertificateError as e:
            status, data = "400", _certificate_failure(e, job, work["op"])
        except FirecrestError as e:
            status, data = "400", e.error
        except Exception:
            log.exception("task %s (%s) failed", task_id, work["op"])
            status, data = "400", f"Internal error while running the task (request id {job.request_id})"
        try:
            try:
                self.tasks.update(work["token"], task_id, status, data, holder=holder)
            except OutcomeTooLarge as e:
                self.tasks.update(work["token"], task_id, "400", f"{e.error}: narrow the request (job ids, times, "
                                  "pageSize and pageNumber)", holder=holder)
        except TaskGone as e:
            log.warning("%s; outcome dropped", e)
        except FirecrestError as e:  # the task store stayed down: the lease runs out and recovery redoes it
            log.error("task %s: outcome not recorded (%s); left to recovery", task_id, e.error)

    def ensure_recovery(self) -> None:
        with self._lock:
            if self._recovery is None or not self._recovery.is_alive():
                self._recovery = threading.Thread(target=self._recover_forever, name="compute-recovery",
                                                  daemon=True)
                self._recovery.start()

    def _recover_forever(self) -> None:
        while True:
            try:
                self.recover_once()
            except Exception as e:  # the tasks service may be down too; try again later
                log.warning("task recovery: %r", e)
            time.sleep(RECOVERY_INTERVAL_S)

    def recover_once(self) -> int:
        holder, claimed = self.tasks.claim("compute", LEASE_S, limit=20)
        for task, work in claimed:
            if work is None:  # sealed with another credential: not ours to resume
                log.error("task %s: its private part cannot be opened; not resumed", task["task_id"])
                continue
            log.warning("task %s (%s of %s): resuming after its process stopped", task["task_id"],
                        work.get("op"), task["user"])
            self.pool.submit(self._execute, task["task_id"], work, time.monotonic() + LEASE_S, True, holder)
        return len(claimed)


def _certificate_failure(err: CertificateError, job: Job, op: str) -> str:
    if not (job.resumed and err.status == 401):
        return err.error
    text = ("The compute service restarted while this task was running, and the token it was started with has "
            "expired, so it could not be resumed")
    if op == "submit":
        text += f"; if the job was submitted, its comment is firecrest-task={job.task_id}"
    return text
