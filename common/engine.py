"""One engine for a service's background work: each piece of work is a task, run by the process holding its lease.

A request creates its task already leased to this process (`start`) and hands the run to a handler (compute runs
an operation, storage steps a transfer through its codes). The work record travels, sealed, in the task's private
part, so that if the process dies any other one can claim the task once its lease runs out and resume it
(`recover_once`). A lease is fenced by its holder name: the tasks service refuses updates from a process whose
lease was taken over, so a process that lost a task can never overwrite what the new holder did.

The loops (recovery, lease renewal, a service's own) run in their own threads, started by `serve` and watched:
a loop that died is started again at the next call of `serve` (every `start` calls it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from .auth import Identity
from .commands import Command, T
from .errors import FirecrestError
from .remote import Remote
from .ssh import Feed
from .task_status import Status
from .tasks_client import LeaseLost, OutcomeTooLarge, TaskGone, TasksClient

log = logging.getLogger("firecrest.engine")

RECOVERY_EVERY_S = 5.0
CLAIM_LIMIT = 20
# A step that changes the cluster (sbatch) starts only with this much lease left: it is bounded by the remote
# timeout of a few seconds, so it never overlaps with a recovery of the same task.
SAFE_MARGIN_S = 10.0


class Outcome(Enum):
    """What became of a task's outcome (`Engine.finish`)."""

    RECORDED = "recorded"
    GONE = "gone"  # the task was deleted (invalidated) or expired: nothing of it should remain
    LEFT = "left"  # another process holds it, or the store stayed down: leave it, and what it staged, alone


class LeaseEnding(Exception):
    """Too little of the lease is left for a step that changes the cluster: leave the task to recovery."""


@dataclass(frozen=True)
class Work:
    """What a task's background work needs, and all another process needs to resume it."""

    op: str
    system: str
    args: dict[str, Any]
    user: str
    token: str
    request_id: str = ""

    @classmethod
    def of(cls, user: Identity, system: str, op: str, args: dict[str, Any], request_id: str) -> Work:
        return cls(op, system, args, user.username, user.token, request_id)

    @classmethod
    def from_private(cls, private: dict[str, Any] | None) -> Work | None:
        try:
            return cls(**private) if private else None
        except TypeError:  # written by another version: not ours to resume
            return None

    @property
    def identity(self) -> Identity:
        """The caller; `background`: its certificates come from the resume route (the token may have expired)."""
        return Identity(self.user, self.token, {}, background=True)


@dataclass
class TaskRun:
    """One run of one task's work in this process: the lease it holds, and the cluster as the task's user."""

    task_id: str
    work: Work
    status: Status
    holder: str  # this process's name for the lease
    remote: Remote
    lease_s: float
    resumed: bool = False
    busy: bool = False  # a step is running in a pool
    deadline: float = field(default=0.0)  # time.monotonic() when the lease runs out, as last set
    ended: threading.Event = field(default_factory=threading.Event)  # this process is done with it

    def __post_init__(self) -> None:
        self.deadline = self.deadline or time.monotonic() + self.lease_s

    @property
    def user(self) -> Identity:
        return self.work.identity

    @property
    def system(self) -> str:
        return self.work.system

    @property
    def args(self) -> dict[str, Any]:
        return self.work.args

    def run(self, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T:
        return self.remote.run(self.user, self.system, command, self.work.request_id, stdin=stdin,
                               max_output=max_output)

    def feed(self, command: Command[T]) -> AbstractContextManager[Feed[T]]:
        return self.remote.feed(self.user, self.system, command, self.work.request_id)

    def before_change(self) -> None:
        """Raise LeaseEnding unless SAFE_MARGIN_S of the lease is left."""
        if time.monotonic() > self.deadline - SAFE_MARGIN_S:
            raise LeaseEnding(self.task_id)


R = TypeVar("R", bound=TaskRun)
R_contra = TypeVar("R_contra", bound=TaskRun, contravariant=True)


class Handler(Protocol[R_contra]):
    def dispatch(self, run: R_contra) -> None:
        """Start (or go on with) the run: hand it to a pool, or leave it waiting."""


@dataclass(frozen=True)
class Loop:
    name: str
    action: Callable[[], object]
    every_s: float


class Pool(ThreadPoolExecutor):
    """A named thread pool whose threads close their own connections (`release`: the tasks service's session each
    thread has) after each piece of work. A pool thread then idles, for as long as the pool lives, and with its
    connections open the site would hold one per thread the pool ever grew to. A piece of work (a transfer's step,
    a job's submission) costs far more than the new connection it then opens. (Storage's threads keep their Swift
    connection: storage/external.py says why.)"""

    def __init__(self, workers: int, name: str, release: Sequence[Callable[[], None]]) -> None:
        super().__init__(workers, thread_name_prefix=name)
        self.release = release

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(self._then_release, fn, *args, **kwargs)

    def _then_release(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            for release in self.release:
                try:
                    release()
                except Exception:  # closing a connection that broke: nothing of the work's is lost
                    log.debug("releasing a pool thread's connections failed", exc_info=True)


class Engine(Generic[R]):
    """The background work of one service (`service` names its tasks in the tasks store)."""

    def __init__(self, service: str, tasks: TasksClient, remote: Remote, *, lease_s: float,
                 renew_every_s: float | None = None, run_type: type[R] = TaskRun,  # type: ignore[assignment]
                 too_large_hint: str = "narrow the request") -> None:
        self.service, self.tasks, self.remote = service, tasks, remote
        self.too_large_hint = too_large_hint
        self.lease_s, self.renew_every_s, self.run_type = lease_s, renew_every_s, run_type
        self.handler: Handler[R] | None = None
        self.held: dict[str, R] = {}
        self.loops: list[Loop] = [Loop(f"{service}-recovery", self.recover_once, RECOVERY_EVERY_S)]
        if renew_every_s:
            self.loops.append(Loop(f"{service}-leases", self.renew_leases, renew_every_s))
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def pool(self, workers: int, name: str) -> Pool:
        """A pool whose threads close their connection to the tasks service after each piece of work."""
        return Pool(workers, f"{self.service}-{name}", (self.tasks.release,))

    # -- starting and resuming -----------------------------------------------------------------------------

    def start(self, user: Identity, system: str, op: str, args: dict[str, Any], request_id: str,
              wait_s: float = 0.0, task_id: str | None = None) -> str:
        """Create the task (with `task_id` if the service chose it), leased to this process, and start its work;
        returns the task id once the work has ended or after `wait_s`, whichever comes first (a short wait saves
        the client the polls of quick work)."""
        self.serve()
        work = Work.of(user, system, op, args, request_id)
        task_id, holder = self.tasks.create_held(user, self.service, system, asdict(work), self.lease_s, task_id)
        run = self.run_type(task_id, work, Status.QUEUED, holder, self.remote, self.lease_s)
        self._dispatch(run)
        if wait_s > 0:
            run.ended.wait(wait_s)
        return task_id

    def recover_once(self) -> int:
        """Claim the tasks whose process died (their lease ran out) and resume them."""
        holder, claimed = self.tasks.claim(self.service, self.lease_s, limit=CLAIM_LIMIT)
        for task, private in claimed:
            work = Work.from_private(private)
            if work is None:  # sealed with another credential, or another version's: not ours to resume
                log.error("task %s: its private part cannot be opened; not resumed", task["task_id"])
                continue
            log.warning("task %s (%s of %s, status %s): resuming after its process stopped", task["task_id"],
                        work.op, work.user, task["status"])
            self._dispatch(self.run_type(task["task_id"], work, Status(task["status"]), holder, self.remote,
                                         self.lease_s, resumed=True))
        return len(claimed)

    def _dispatch(self, run: R) -> None:
        assert self.handler is not None, "an engine needs its handler before it starts work"
        with self._lock:
            self.held[run.task_id] = run
        self.handler.dispatch(run)

    # -- recording -----------------------------------------------------------------------------------------

    def progress(self, run: R, status: Status, data: Any) -> None:
        """Record a step (and renew the lease); raises LeaseLost or TaskGone when the task is not ours to go on."""
        self.tasks.update(run.work.token, run.task_id, status, data, lease_s=self.lease_s, holder=run.holder)
        run.status, run.deadline = status, time.monotonic() + self.lease_s

    def finish(self, run: R, status: Status, data: Any) -> Outcome:
        """Record the outcome and let the task go. If the task store stays down the outcome is left unrecorded:
        the lease runs out and recovery runs the work again."""
        with self._lock:
            self.held.pop(run.task_id, None)
        try:
            return self._record(run, status, data)
        finally:
            run.ended.set()  # after the outcome is recorded: a request waiting for it (`start`) then finds it

    def _record(self, run: R, status: Status, data: Any) -> Outcome:
        try:
            try:
                self.tasks.update(run.work.token, run.task_id, status, data, holder=run.holder)
            except OutcomeTooLarge as e:
                self.tasks.update(run.work.token, run.task_id, Status.FAILED, f"{e.error}: {self.too_large_hint}",
                                  holder=run.holder)
        except LeaseLost as e:
            log.warning("%s; outcome dropped", e)
            return Outcome.LEFT
        except TaskGone as e:
            log.info("%s; outcome dropped", e)
            return Outcome.GONE
        except FirecrestError as e:
            log.error("task %s: outcome not recorded (%s); left to recovery", run.task_id, e.error)
            return Outcome.LEFT
        run.status = status
        return Outcome.RECORDED

    def drop(self, run: R) -> None:
        with self._lock:
            self.held.pop(run.task_id, None)
        run.ended.set()

    def renew_leases(self) -> None:
        with self._lock:
            held = list(self.held.values())
        for run in held:
            try:
                self.tasks.renew(run.work.token, run.task_id, self.lease_s, holder=run.holder)
                run.deadline = time.monotonic() + self.lease_s
            except TaskGone:  # deleted (invalidated), expired, or held by another process now: stop caring
                log.info("task %s is gone; dropped", run.task_id)
                self.drop(run)

    # -- the loops -----------------------------------------------------------------------------------------

    def every(self, name: str, action: Callable[[], object], every_s: float) -> None:
        """Run `action` every `every_s` in its own thread once the engine serves (a slow object store must never
        delay lease renewals)."""
        self.loops.append(Loop(f"{self.service}-{name}", action, every_s))

    def serve(self) -> None:
        """Start the loops; start again any that died (the watchdog: called on every `start` too)."""
        with self._lock:
            for loop in self.loops:
                thread = self._threads.get(loop.name)
                if thread is None or not thread.is_alive():
                    self._threads[loop.name] = threading.Thread(target=_forever, args=(loop,), name=loop.name,
                                                                daemon=True)
                    self._threads[loop.name].start()


def _forever(loop: Loop) -> None:
    while True:
        try:
            loop.action()
        except Exception as e:  # the tasks service or a backend may be down: try again later
            log.warning("%s: %r", loop.name, e)
        time.sleep(loop.every_s)
