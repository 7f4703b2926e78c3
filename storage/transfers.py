"""External transfers: each task moves through the contract's codes, and survives a restart of this service.

Each task has its own area in the object store (swift.py), whose URLs all end when the task does.

Upload (user -> cluster): 100 -> 111 (the client gets PUT temp URLs and a command) -> the upload arrives
(watched every WATCH_INTERVAL_S at first, less often the longer it takes) -> 112 (complete) -> 113 (an xfer job
pulls it, md5 of every piece checked against Swift's etags, then renamed onto the target) -> 114, or 115 with
the reason. A segmented upload goes 111 -> 113 at its first segment (pulled while the rest arrive; if they stop
coming, the job ends and the task waits for the whole upload). The area is then removed.
Download (cluster -> user): 100 -> 116 (an xfer job pushes the file) -> 117 with a GET temp URL, or 118.
A user has at most storage.max_transfers_per_user of them in flight (limits.py).

Each unfinished task is leased (tasks service): this process renews the leases of the tasks it holds; if it
dies, another storage process claims them and goes on from the task's status. Every step can run again: a
resumed pull or push first cancels the job a dead process may have left running, then starts over.
"""

from __future__ import annotations

import logging
import math
import posixpath
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common.auth import Identity
from common.commands import Command, T
from common.config import site
from common.errors import FirecrestError
from common.files import Remove, Rename
from common.remote import feed_as, run_as
from common.tasks import LeaseLost, TaskGone, TasksClient, new_work, work_identity

from . import upload, xfer
from .limits import Admission
from .swift import MAX_SEGMENT_BYTES, MAX_SEGMENTS, MiB, Staging, StoredObject, segment_bytes, segment_name
from .upload import TransferFailed

log = logging.getLogger("firecrest.storage")

LEASE_S = 60.0  # generous: a process that loses a live transfer's lease would see it redone by another
RENEW_EVERY_S = 10.0
RECOVERY_EVERY_S = 5.0
WATCH_INTERVAL_S = 0.25  # how soon an uploaded object is noticed (in the first seconds of the wait)
WATCH_MAX_INTERVAL_S = 2.0  # ... and at most this long after: a long wait is watched less often
WATCH_SLOWDOWN = 20  # the interval grows to 1/20 of the time waited so far
FEED_INTERVAL_S = 0.1  # how soon a pull job gets the next segment of an upload in progress
STALL_S = 120.0  # a pull job waits this long for the client's next segment
SWEEP_EVERY_S = 3600.0
JOB_URL_TTL_S = 86400  # the URLs a transfer job uses (it starts at once; it is bounded by its time limit)
CANCEL_WAIT_S = 15.0

class Stalled(Exception):
    """The client stopped sending an upload's segments: stop pulling, and wait for the whole upload."""


@dataclass
class Transfer:
    task_id: str
    work: dict[str, Any]  # the task's private part: op, system, user, token, request_id, args
    status: str
    holder: str  # this process's name for its lease (the tasks service refuses updates of a lost lease)
    resumed: bool = False
    busy: bool = field(default=False)  # a step is running in the pool
    whole: bool = False  # an upload that stalled: pull it only once complete
    waiting_since: float = field(default_factory=time.monotonic)  # for the client's upload (status 111)
    next_check: float = 0.0  # when the watcher looks for it next (time.monotonic)

    @property
    def user(self) -> Identity:
        return work_identity(self.work)

    @property
    def username(self) -> str:
        return self.work["user"]

    @property
    def system(self) -> str:
        return self.work["system"]

    @property
    def args(self) -> dict[str, Any]:
        return self.work["args"]

    def run(self, command: Command[T], stdin: bytes | None = None) -> T:
        return run_as(self.user, self.system, command, self.work.get("request_id", ""), stdin=stdin)


class Transfers:
    def __init__(self, tasks: TasksClient, staging: Staging, workers: int = 16) -> None:
        self.tasks = tasks
        self.staging = staging
        self.admission = Admission(tasks, site().storage.max_transfers_per_user)
        # A transfer holds its thread for as long as its job runs (a pull, as long as the client uploads); the
        # quick steps (an upload's instructions) have their own, so they never wait behind transfers.
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="storage-transfer")
        self.quick = ThreadPoolExecutor(4, thread_name_prefix="storage-offer")
        self.held: dict[str, Transfer] = {}
        self._lock = threading.Lock()
        self._loops: dict[str, threading.Thread] = {}

    # -- starting ------------------------------------------------------------------------------------------

    def start(self, user: Identity, system: str, op: str, args: dict[str, Any], request_id: str) -> str:
        self.ensure_watcher()
        work = new_work(user, system, op, args, request_id)
        task_id, holder = self.tasks.create_held(user, "storage", work, LEASE_S)
        self._dispatch(Transfer(task_id, work, "100", holder))
        return task_id

    def _dispatch(self, t: Transfer) -> None:
        with self._lock:
            self.held[t.task_id] = t
            if t.work["op"] == "upload" and t.status == "111":
                return  # waits for the object (the watcher)
            t.busy = True
        offer = t.work["op"] == "upload" and t.status in ("100", "110")
        (self.quick if offer else self.pool).submit(self._step, t)

    def _step(self, t: Transfer) -> None:
        op = t.work["op"]
        failure = "115" if op == "upload" and t.status not in ("100", "110") else "118" if op == "download" else "400"
        try:
            if op == "download":
                self._push(t)
            elif t.status in ("100", "110"):
                self._offer(t)
            else:
                self._pull(t)
        except LeaseLost as e:  # another process goes on with it: leave it (and what is staged) alone
            log.warning("%s; transfer left to it", e)
            self._drop(t)
        except TaskGone as e:  # invalidated (or expired): nothing of it is kept
            log.info("%s; transfer stopped", e)
            self._drop(t)
            self._unstage(t)
        except Stalled:
            log.info("task %s: the upload stopped arriving; waiting for all of it", t.task_id)
            t.whole = True
            t.status, t.waiting_since, t.next_check = "111", time.monotonic(), 0.0
        except FirecrestError as e:
            self._finish(t, failure, self._failure_data(t, e.error))
        except Exception:
            log.exception("task %s (%s) failed", t.task_id, op)
            reason = f"Internal error during the transfer (request id {t.work.get('request_id', '-')})"
            self._finish(t, failure, self._failure_data(t, reason))
        finally:
            t.busy = False

    def _update(self, t: Transfer, status: str, data: Any) -> None:
        self.tasks.update(t.user.token, t.task_id, status, data, lease_s=LEASE_S, holder=t.holder)
        t.status = status

    def _finish(self, t: Transfer, status: str, data: Any) -> None:
        """End the client's upload URLs, record the outcome, then remove the area (an upload's pieces, a failed
        transfer's leftovers): once a client sees the outcome, its URLs take nothing more; a process killed
        before the area is removed leaves it to the sweep, never a task that is resumed without its object (a
        resumed pull reads with the job's URLs, which live on until then)."""
        self._drop(t)
        if t.work["op"] == "upload":
            try:
                self.staging.end_urls(t.task_id, job=False)
            except FirecrestError as e:
                log.warning("task %s: upload URLs not ended: %s", t.task_id, e.error)
        try:
            self.tasks.update(t.user.token, t.task_id, status, data, holder=t.holder)
        except LeaseLost as e:
            log.warning("%s; outcome dropped", e)
            return
        except TaskGone as e:  # invalidated meanwhile: a pushed object must not outlive it either
            log.info("%s; outcome dropped", e)
            status = "gone"
        except FirecrestError as e:  # the task store stayed down: recovery will run the step again
            log.error("task %s: outcome not recorded (%s)", t.task_id, e.error)
            return
        if status != "117":
            self._unstage(t)

    def _unstage(self, t: Transfer) -> None:
        try:
            self.staging.retire(t.task_id)
        except FirecrestError as e:
            log.warning("task %s: staged objects not removed: %s", t.task_id, e.error)

    def _drop(self, t: Transfer) -> None:
        with self._lock:
            self.held.pop(t.task_id, None)

    def _failure_data(self, t: Transfer, reason: str) -> dict[str, Any]:
        # The contract's keys: an upload's data carries its message in `msg`, a download's error in `error`.
        return {**self._summary(t), "msg" if t.work["op"] == "upload" else "error": reason}

    def _summary(self, t: Transfer) -> dict[str, Any]:
        args = t.args
        if t.work["op"] == "upload":
            return {"source": args["name"], "target": args["target"], "system_name": t.system}
        return {"source": args["source"], "system_name": t.system}

    # -- upload --------------------------------------------------------------------------------------------

    def _offer(self, t: Transfer) -> None:
        """What the client needs to upload straight to Swift (status 111), into the task's own area: its URLs
        live as long as the contract's temp URLs, and the jobs that pull may start up to that late."""
        user, task, name = t.username, t.task_id, t.args["name"]
        storage = site().storage
        self.staging.open_area(task, storage.temp_url_ttl_s + JOB_URL_TTL_S)
        msg = upload.offer(self.staging, task, t.args["source"], name, storage.segment_size_mb * MiB)
        data = {"user": user, "system_name": t.system, "target": t.args["target"], "source": name,
                "status": "111", "hash_id": task, "msg": msg}
        self._update(t, "111", data)
        t.waiting_since, t.next_check = time.monotonic(), 0.0
        log.info("task %s: waiting for %s", task, name)

    def _pull(self, t: Transfer) -> None:
        """Pull the upload into a part file next to the target, verify it, rename it onto the target.

        A segmented upload is pulled while it arrives: the job starts with the first segment and gets each next
        one's URL on its input as soon as Swift has it. If the client stops sending for STALL_S, the job ends
        and the task waits for the complete upload instead (it holds no slot of the xfer partition meanwhile).
        """
        task, name, target = t.task_id, t.args["name"], t.args["target"]
        summary = self._summary(t)
        pieces, complete = upload.pieces(self.staging, task, name)
        if complete:
            self._update(t, "112", summary)
        self._update(t, "113", summary)
        if t.resumed:
            self._cancel_jobs(t)
        part = xfer.part_path(target, task)
        partition = site().systems[t.system].xfer_partition
        fed: list[StoredObject] = []
        try:
            with feed_as(t.user, t.system, xfer.Pull(partition, task, part), t.work.get("request_id", "")) as job:
                last_progress = time.monotonic()
                while True:
                    for piece in pieces[len(fed):]:
                        url = self.staging.temp_url(task, piece.name, "GET", public=False, ttl_s=JOB_URL_TTL_S,
                                                    job=True)
                        job.send(f"{url}\n".encode())
                        fed.append(piece)
                        last_progress = time.monotonic()
                    if complete or not job.running or t.task_id not in self.held:
                        break
                    if time.monotonic() - last_progress > STALL_S:
                        break
                    time.sleep(FEED_INTERVAL_S)
                    pieces, complete = upload.pieces(self.staging, task, name)
                out = job.finish()
            if not complete:
                raise Stalled(task)
            sums = xfer.md5s(out)
            expected = [p.etag for p in fed]
            if sums != expected:
                raise TransferFailed(f"Checksum mismatch: the staged file has md5 {expected}, the pulled {sums}")
            size = t.run(xfer.FileSize(part))
            if size != sum(p.size for p in fed):
                raise TransferFailed(f"Size mismatch: staged {sum(p.size for p in fed)} bytes, pulled {size}")
            t.run(Rename(part, target))
        except (FirecrestError, Stalled):
            try:
                t.run(Remove(part))
            except FirecrestError as e:
                log.warning("task %s: %s not removed: %s", task, part, e.error)
            raise
        self._finish(t, "114", summary)

    # -- download ------------------------------------------------------------------------------------------

    def _push(self, t: Transfer) -> None:
        """Push the file into the task's area with the job's URLs; at 117 those end, the client's GET URL lives."""
        task, source, size = t.task_id, t.args["source"], t.args["size"]
        name = posixpath.basename(source)
        storage = site().storage
        # One object up to Swift's limit: read back fastest (a static large object's GET costs more); beyond it,
        # a static large object of segments as large as allowed.
        segment = segment_bytes(size, MAX_SEGMENT_BYTES)
        count = max(1, math.ceil(size / segment))
        if segment > MAX_SEGMENT_BYTES:
            raise TransferFailed(f"The file is larger than {MAX_SEGMENTS} segments of {MAX_SEGMENT_BYTES} bytes")
        self._update(t, "116", self._summary(t))
        if t.resumed:
            self._cancel_jobs(t)
            self.staging.retire(task)
        self.staging.open_area(task, 2 * JOB_URL_TTL_S)  # until 117 (the job runs up to a day)
        names = [name] if count == 1 else [segment_name(i) for i in range(count)]
        urls = [self.staging.temp_url(task, n, "PUT", public=False, ttl_s=JOB_URL_TTL_S, job=True) for n in names]
        partition = site().systems[t.system].xfer_partition
        t.run(xfer.Push(partition, task, source, segment // MiB if count > 1 else 0),
              stdin="".join(u + "\n" for u in urls).encode())
        stored = {o.name: o for o in self.staging.listing(task) or []}  # looked up by the names it should have
        sizes = [stored[n].size if n in stored else -1 for n in names]
        expected = [min(segment, size - i * segment) for i in range(count)] if count > 1 else [size]
        if sizes != expected:
            raise TransferFailed(f"The file changed or was not fully read: {sum(max(s, 0) for s in sizes)} bytes "
                                 f"staged of {size}")
        if count > 1:
            self.staging.write_manifest(task, name, [stored[n] for n in names])
        url = self.staging.temp_url(task, name, "GET", public=True)
        self.staging.end_urls(task, client=False, expires_in=storage.temp_url_ttl_s + 60)
        self._finish(t, "117", {"url": url, **self._summary(t)})

    def _cancel_jobs(self, t: Transfer) -> None:
        """A job left by a process that died must be gone before the transfer starts over."""
        deadline = time.monotonic() + CANCEL_WAIT_S
        while jobs := t.run(xfer.FindJob(t.task_id)):
            log.warning("task %s: cancelling job(s) %s of an earlier attempt", t.task_id, ",".join(jobs))
            t.run(xfer.CancelJobs(jobs))
            if time.monotonic() > deadline:
                raise TransferFailed(f"The transfer job(s) {','.join(jobs)} of an earlier attempt did not stop")
            time.sleep(0.5)

    # -- watching, leases and recovery ---------------------------------------------------------------------

    def ensure_watcher(self) -> None:
        """Start the background loops, each in its own thread: a slow object store (listings under a heavy
        transfer) must never delay the lease renewals, or another process would take over live transfers."""
        loops = {"storage-leases": (self.renew_leases, RENEW_EVERY_S),
                 "storage-recovery": (self.recover_once, RECOVERY_EVERY_S),
                 "storage-sweep": (self.sweep, SWEEP_EVERY_S),
                 "storage-arrivals": (self.check_arrivals, WATCH_INTERVAL_S)}
        with self._lock:
            for name, (action, interval) in loops.items():
                thread = self._loops.get(name)
                if thread is None or not thread.is_alive():
                    self._loops[name] = threading.Thread(target=_every, args=(interval, action), name=name,
                                                         daemon=True)
                    self._loops[name].start()

    def check_arrivals(self) -> None:
        """Look for the uploads that are due: each listing costs the object store a request, so an upload is
        looked for every WATCH_INTERVAL_S in the first seconds of its wait, then less and less often (at most
        WATCH_MAX_INTERVAL_S apart): a client that runs the command at once is noticed at once, and a
        forgotten upload costs little."""
        now = time.monotonic()
        with self._lock:
            due = [t for t in self.held.values() if t.status == "111" and not t.busy and t.next_check <= now]
        for t in due:
            waited = now - t.waiting_since
            t.next_check = now + min(WATCH_MAX_INTERVAL_S, max(WATCH_INTERVAL_S, waited / WATCH_SLOWDOWN))
            try:
                found = upload.arrived(self.staging, t.task_id, t.args["name"], t.whole)
            except FirecrestError as e:
                log.warning("task %s: %s", t.task_id, e.error)
                continue
            if found:
                log.info("task %s: the upload has arrived", t.task_id)
                t.busy = True
                self.pool.submit(self._step, t)

    def renew_leases(self) -> None:
        with self._lock:
            held = list(self.held.values())
        for t in held:
            try:
                self.tasks.renew(t.user.token, t.task_id, LEASE_S, holder=t.holder)
            except TaskGone:  # deleted (invalidated) or expired: stop caring
                log.info("task %s is gone; dropped", t.task_id)
                self._drop(t)

    def sweep(self) -> None:
        """Objects outlive every URL that could use them by a day: delete them (see Staging.sweep)."""
        removed = self.staging.sweep(site().storage.temp_url_ttl_s + JOB_URL_TTL_S)
        if removed:
            log.info("removed %d staged objects older than every URL to them", removed)

    def recover_once(self) -> int:
        holder, claimed = self.tasks.claim("storage", LEASE_S, limit=20)
        for task, work in claimed:
            if work is None:
                log.error("task %s: its private part cannot be opened; not resumed", task["task_id"])
                continue
            log.warning("task %s (%s of %s, status %s): resuming after its process stopped", task["task_id"],
                        work.get("op"), task["user"], task["status"])
            self._dispatch(Transfer(task["task_id"], work, task["status"], holder, resumed=True))
        return len(claimed)


def _every(interval_s: float, action: Callable[[], object]) -> None:
    while True:
        try:
            action()
        except Exception as e:  # the tasks service or the object store may be down: try again later
            log.warning("%s: %r", getattr(action, "__name__", action), e)
        time.sleep(interval_s)
