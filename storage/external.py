"""External transfers on the engine: each task moves through the contract's codes, and survives a restart.

Each task has its own area in the object store (swift.py), whose URLs all end when the task does.

Upload (user -> cluster, external_upload.py): 100 -> 111 (the client gets PUT temp URLs and a command) -> the
upload arrives (watched every WATCH_INTERVAL_S at first, less often the longer it takes) -> 112 (complete) -> 113
(an xfer job pulls it, md5 of every piece checked against Swift's etags, then renamed onto the target) -> 114, or
115 with the reason. A segmented upload goes 111 -> 113 at its first segment (pulled while the rest arrive; if
they stop coming, the job ends and the task waits for the whole upload). The area is then removed.
Download (cluster -> user, external_download.py): 100 -> 116 (an xfer job pushes the file) -> 117 with a GET temp
URL, or 118. A user has at most storage.max_transfers_per_user of them in flight (limits.py).

Each unfinished task is leased (common/engine.py): this process renews the leases of the tasks it holds; if it
dies, another storage process claims them and goes on from the task's status. Every step can run again: a
resumed pull or push first cancels the job a dead process may have left running, then starts over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.config import Site
from common.engine import Engine, Outcome, TaskRun
from common.errors import FirecrestError
from common.remote import Remote
from common.slurm.jobs import CancelJobs, FindAnyJob, FindJob
from common.task_status import Status
from common.tasks_client import LeaseLost, TaskGone, TasksClient

from .external_download import push
from .external_upload import WATCH_INTERVAL_S, Uploads
from .limits import Admission
from .swift import JOB_URL_TTL_S, Staging
from .transfer_errors import JobLost, Stalled, TransferFailed

log = logging.getLogger("firecrest.storage")

LEASE_S = 60.0  # generous: a process that loses a live transfer's lease would see it redone by another
RENEW_EVERY_S = 10.0
SWEEP_EVERY_S = 3600.0
CANCEL_WAIT_S = 15.0
OFFERING = (Status.QUEUED, Status.UPLOAD_OFFER_PENDING)  # an upload whose client has no URLs yet
JOB_LOST_LOOKS = 2  # looks in a row (common/ssh.py WATCH_EVERY_S apart) that find no job: Slurm forgot it
JOB_ATTEMPTS = 3  # a transfer whose job Slurm lost starts over, up to this many times in all


@dataclass
class Transfer(TaskRun):
    whole: bool = False  # an upload that stalled: pull it only once complete
    waiting_since: float = field(default_factory=time.monotonic)  # for the client's upload (status 111)
    next_check: float = 0.0  # when the watcher looks for it next (time.monotonic)

    @property
    def upload(self) -> bool:
        return self.work.op == "upload"

    def summary(self) -> dict[str, Any]:
        if self.upload:
            return {"source": self.args["name"], "target": self.args["target"], "system_name": self.system}
        return {"source": self.args["source"], "system_name": self.system}

    def failure(self, reason: str) -> tuple[Status, dict[str, Any]]:
        """The failed status at this step, and its data with the contract's keys (an upload's message in `msg`,
        a download's error in `error`)."""
        if not self.upload:
            return Status.DOWNLOAD_FAILED, {**self.summary(), "error": reason}
        status = Status.FAILED if self.status in OFFERING else Status.UPLOAD_FAILED
        return status, {**self.summary(), "msg": reason}


class ExternalTransfers:
    """The engine's handler for storage: steps each transfer, and watches what waits for the client."""

    def __init__(self, engine: Engine[Transfer], staging: Staging, site: Site, workers: int = 16) -> None:
        self.engine, self.staging, self.site = engine, staging, site
        self.admission = Admission(engine.tasks, site.storage.max_transfers_per_user)
        # A transfer holds its thread for as long as its job runs (a pull, as long as the client uploads); the
        # quick steps (an upload's instructions) have their own, so they never wait behind transfers.
        # Each pool thread keeps its own connection to Swift (swiftclient's Connection is not thread-safe): closed
        # after each piece of work, its sockets would wait in reference cycles for a garbage collection instead.
        self.pool = engine.pool(workers, "transfer")
        self.quick = engine.pool(4, "offer")
        self.uploads = Uploads(self)

    def dispatch(self, t: Transfer) -> None:
        if t.upload and t.status == Status.UPLOAD_WAITING:
            return  # waits for the object (check_arrivals)
        t.busy = True
        (self.quick if t.upload and t.status in OFFERING else self.pool).submit(self.step, t)

    def step(self, t: Transfer) -> None:
        try:
            self._attempts(t)
        except LeaseLost as e:  # another process goes on with it: leave it (and what is staged) alone
            log.warning("%s; transfer left to it", e)
            self.engine.drop(t)
        except TaskGone as e:  # invalidated (or expired): nothing of it is kept
            log.info("%s; transfer stopped", e)
            self.engine.drop(t)
            self.unstage(t)
        except Stalled:
            log.info("task %s: the upload stopped arriving; waiting for all of it", t.task_id)
            t.whole = True
            t.status, t.waiting_since, t.next_check = Status.UPLOAD_WAITING, time.monotonic(), 0.0
        except FirecrestError as e:
            self.finish(t, *t.failure(e.error))
        except Exception:
            log.exception("task %s (%s) failed", t.task_id, t.work.op)
            self.finish(t, *t.failure(f"Internal error during the transfer (request id {t.work.request_id or '-'})"))
        finally:
            t.busy = False

    def _attempts(self, t: Transfer) -> None:
        """The transfer's step; one whose job Slurm lost starts over (what is left of it cancelled first)."""
        for attempt in range(1, JOB_ATTEMPTS + 1):
            try:
                if not t.upload:
                    push(self, t)
                elif t.status in OFFERING:
                    self.uploads.offer(t)
                else:
                    self.uploads.pull(t)
                return
            except JobLost as e:
                if attempt == JOB_ATTEMPTS:
                    raise
                log.warning("task %s: %s; starting over", t.task_id, e.error)
                t.resumed = True

    def job_watch(self, t: Transfer) -> Callable[[], None]:
        """For Feed.finish while the transfer's srun runs: raises JobLost once JOB_LOST_LOOKS looks in a row find
        no job of the transfer's in Slurm, in any state. A look that fails (the controller down) counts for
        nothing; a job that ends between two looks is still found (squeue keeps it for MinJobAge)."""
        misses = 0

        def look() -> None:
            nonlocal misses
            try:
                found = t.run(FindAnyJob(t.task_id))
            except FirecrestError:
                return
            misses = 0 if found else misses + 1
            if misses >= JOB_LOST_LOOKS:
                raise JobLost()

        return look

    def check_arrivals(self) -> None:
        self.uploads.check_arrivals()

    def finish(self, t: Transfer, status: Status, data: Any) -> None:
        """End the client's upload URLs, record the outcome, then remove the area (an upload's pieces, a failed
        transfer's leftovers): once a client sees the outcome, its URLs take nothing more; a process killed
        before the area is removed leaves it to the sweep, never a task that is resumed without its object (a
        resumed pull reads with the job's URLs, which live on until then)."""
        if t.upload:
            try:
                self.staging.end_urls(t.task_id, job=False)
            except FirecrestError as e:
                log.warning("task %s: upload URLs not ended: %s", t.task_id, e.error)
        outcome = self.engine.finish(t, status, data)
        # A pushed object lives on for its GET URL, unless the task was invalidated meanwhile.
        if outcome is Outcome.GONE or (outcome is Outcome.RECORDED and status != Status.DOWNLOAD_READY):
            self.unstage(t)

    def unstage(self, t: Transfer) -> None:
        try:
            self.staging.retire(t.task_id)
        except FirecrestError as e:
            log.warning("task %s: staged objects not removed: %s", t.task_id, e.error)

    def cancel_earlier_jobs(self, t: Transfer) -> None:
        """A job left by a process that died must be gone before the transfer starts over."""
        deadline = time.monotonic() + CANCEL_WAIT_S
        while jobs := t.run(FindJob(t.task_id)):
            log.warning("task %s: cancelling job(s) %s of an earlier attempt", t.task_id, ",".join(jobs))
            t.run(CancelJobs(jobs))
            if time.monotonic() > deadline:
                raise TransferFailed(f"The transfer job(s) {','.join(jobs)} of an earlier attempt did not stop")
            time.sleep(0.5)

    def sweep(self) -> None:
        """Objects outlive every URL that could use them by a day: delete them (see Staging.sweep)."""
        removed = self.staging.sweep(self.site.storage.temp_url_ttl_s + JOB_URL_TTL_S)
        if removed:
            log.info("removed %d staged objects older than every URL to them", removed)


def storage_engine(tasks: TasksClient, remote: Remote, staging: Staging, site: Site,
                   workers: int = 16) -> tuple[Engine[Transfer], ExternalTransfers]:
    engine = Engine("storage", tasks, remote, lease_s=LEASE_S, renew_every_s=RENEW_EVERY_S, run_type=Transfer)
    transfers = ExternalTransfers(engine, staging, site, workers)
    engine.handler = transfers
    engine.every("arrivals", transfers.check_arrivals, WATCH_INTERVAL_S)
    engine.every("sweep", transfers.sweep, SWEEP_EVERY_S)
    return engine, transfers
