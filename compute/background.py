"""Background work of compute tasks: each request's operation runs in this process's pool, on the engine.

The outcome is the task's `data`. If this process dies, the lease (LEASE_S, not renewed: operations are short)
runs out and any compute process claims the task and runs it again: reads simply run again, and a submission
first asks Slurm whether the job already exists (each job carries its task id in its comment), so nothing is
submitted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.engine import Engine, LeaseEnding, TaskRun
from common.errors import CertificateError, FirecrestError
from common.remote import Remote
from common.task_status import Status
from common.tasks_client import TasksClient

log = logging.getLogger("firecrest.compute")

LEASE_S = 15.0  # a task not finished by its process within this is claimed by another one
TOO_LARGE_HINT = "narrow the request (job ids, times, pageSize and pageNumber)"

Operation = Callable[[TaskRun, dict[str, Any]], Any]


class OperationRunner:
    """The engine's handler for compute: runs the task's operation and records its outcome."""

    def __init__(self, engine: Engine[TaskRun], operations: dict[str, Operation], workers: int = 16) -> None:
        self.engine = engine
        self.operations = operations
        self.pool = engine.pool(workers, "task")

    def dispatch(self, run: TaskRun) -> None:
        self.pool.submit(self._execute, run)

    def _execute(self, run: TaskRun) -> None:
        op = run.work.op
        try:
            status, data = Status.SUCCEEDED, self.operations[op](run, run.args)
        except LeaseEnding:
            log.warning("task %s: lease nearly over, left to recovery", run.task_id)
            self.engine.drop(run)
            return
        except CertificateError as e:
            status, data = Status.FAILED, _certificate_failure(e, run)
        except FirecrestError as e:
            status, data = Status.FAILED, e.error
        except Exception:
            log.exception("task %s (%s) failed", run.task_id, op)
            status = Status.FAILED
            data = f"Internal error while running the task (request id {run.work.request_id})"
        self.engine.finish(run, status, data)


def compute_engine(tasks: TasksClient, remote: Remote, operations: dict[str, Operation]) -> Engine[TaskRun]:
    engine: Engine[TaskRun] = Engine("compute", tasks, remote, lease_s=LEASE_S, too_large_hint=TOO_LARGE_HINT)
    engine.handler = OperationRunner(engine, operations)
    return engine


def _certificate_failure(err: CertificateError, run: TaskRun) -> str:
    if not (run.resumed and err.status == 401):
        return err.error
    text = ("The compute service restarted while this task was running, and the token it was started with has "
            "expired, so it could not be resumed")
    if run.work.op == "submit":
        text += f"; if the job was submitted, its comment is firecrest-task={run.task_id}"
    return text
