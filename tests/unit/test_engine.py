"""The background engine (common/engine.py) with a fake task store: what it records, when it lets a task go, and
how it resumes the tasks of a process that died."""

from __future__ import annotations

import time
from typing import Any

import pytest

from common.auth import Identity
from common.engine import Engine, LeaseEnding, Outcome, TaskRun, Work
from common.errors import Unavailable
from common.task_status import Status
from common.tasks_client import LeaseLost, OutcomeTooLarge, TaskGone


class FakeTasks:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.updates: list[tuple[str, str, Any, str | None]] = []
        self.claimable: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self.fail_update: Exception | None = None
        self.gone: set[str] = set()

    def create_held(self, user: Identity, service: str, system: str, private: dict[str, Any],
                    lease_s: float, task_id: str | None = None) -> tuple[str, str]:
        self.created.append((service, private))
        return task_id or f"t{len(self.created)}", "holder-a"

    def update(self, token: str, task_id: str, status: str, data: Any = None, lease_s: float | None = None,
               patience_s: float = 0, holder: str | None = None) -> None:
        if self.fail_update:
            error, self.fail_update = self.fail_update, None
            raise error
        self.updates.append((task_id, status, data, holder))

    def renew(self, token: str, task_id: str, lease_s: float, holder: str | None = None) -> None:
        if task_id in self.gone:
            raise TaskGone(task_id)

    def claim(self, service: str, lease_s: float, limit: int = 20) -> tuple[str, list[Any]]:
        claimed, self.claimable = self.claimable, []
        return "holder-b", claimed


class Keep:
    """A handler that keeps what it is given (the test decides what happens next)."""

    def __init__(self) -> None:
        self.runs: list[TaskRun] = []

    def dispatch(self, run: TaskRun) -> None:
        self.runs.append(run)


@pytest.fixture
def engine() -> Engine[TaskRun]:
    e: Engine[TaskRun] = Engine("compute", FakeTasks(), remote=None, lease_s=15, renew_every_s=10)  # type: ignore[arg-type]
    e.handler = Keep()
    e.loops.clear()  # no threads: the tests call the loops' actions themselves
    return e


ALICE = Identity("alice", "token-a", {})


def test_start_creates_a_held_task_with_the_sealed_work_and_dispatches_it(engine):
    task_id = engine.start(ALICE, "cluster", "jobs", {"jobs": None}, "rid-1")
    assert engine.tasks.created == [("compute", {"op": "jobs", "system": "cluster", "args": {"jobs": None},
                                                 "user": "alice", "token": "token-a", "request_id": "rid-1"})]
    (run,) = engine.handler.runs
    assert (run.task_id, run.status, run.holder, run.resumed) == (task_id, Status.QUEUED, "holder-a", False)
    assert run.user.background and run.user.username == "alice"
    assert engine.held == {task_id: run}


def test_finish_records_the_outcome_under_the_holder_and_lets_the_task_go(engine):
    task_id = engine.start(ALICE, "cluster", "jobs", {}, "rid")
    run = engine.held[task_id]
    assert engine.finish(run, Status.SUCCEEDED, {"0": {}}) is Outcome.RECORDED
    assert engine.tasks.updates == [(task_id, Status.SUCCEEDED, {"0": {}}, "holder-a")]
    assert engine.held == {}


@pytest.mark.parametrize(("error", "outcome"), [(LeaseLost("t1: held by another"), Outcome.LEFT),
                                              (TaskGone("t1: gone"), Outcome.GONE),
                                              (Unavailable("down", "Task store unavailable"), Outcome.LEFT)])
def test_an_outcome_that_cannot_be_recorded_is_dropped_not_raised(engine, error, outcome):
    run = engine.held[engine.start(ALICE, "cluster", "jobs", {}, "rid")]
    engine.tasks.fail_update = error
    assert engine.finish(run, Status.SUCCEEDED, "x") is outcome
    assert engine.held == {}


def test_an_outcome_too_large_ends_the_task_saying_so(engine):
    run = engine.held[engine.start(ALICE, "cluster", "jobs", {}, "rid")]
    engine.tasks.fail_update = OutcomeTooLarge("The result is too large to keep in a task (9 bytes)")
    assert engine.finish(run, Status.SUCCEEDED, "x") is Outcome.RECORDED
    assert engine.tasks.updates[-1][1:3] == (Status.FAILED, "The result is too large to keep in a task (9 bytes): "
                                                            "narrow the request")


def test_recovery_resumes_claimed_tasks_under_the_new_holder_and_skips_unreadable_ones(engine):
    work = {"op": "submit", "system": "cluster", "args": {"path": "/x"}, "user": "bob", "token": "tb",
            "request_id": "r"}
    engine.tasks.claimable = [({"task_id": "t7", "status": "113"}, work),
                              ({"task_id": "t8", "status": "100"}, None),  # sealed with another credential
                              ({"task_id": "t9", "status": "100"}, {"op": "submit", "unknown": 1})]
    assert engine.recover_once() == 3
    (run,) = engine.handler.runs
    assert (run.task_id, run.status, run.holder, run.resumed) == ("t7", Status.UPLOAD_PULLING, "holder-b", True)
    assert run.work == Work("submit", "cluster", {"path": "/x"}, "bob", "tb", "r")


def test_renewal_drops_a_task_that_is_gone(engine):
    kept = engine.held[engine.start(ALICE, "cluster", "jobs", {}, "rid")]
    gone = engine.held[engine.start(ALICE, "cluster", "jobs", {}, "rid")]
    engine.tasks.gone.add(gone.task_id)
    engine.renew_leases()
    assert engine.held == {kept.task_id: kept}


def test_a_change_needs_enough_lease_left(engine):
    run = engine.held[engine.start(ALICE, "cluster", "submit", {}, "rid")]
    run.before_change()  # a fresh lease of 15 s
    run.deadline = time.monotonic() + 5
    with pytest.raises(LeaseEnding):
        run.before_change()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_serve_starts_each_loop_once_and_again_when_it_died(engine):
    calls: list[str] = []

    def once() -> None:
        calls.append("ran")
        raise SystemExit  # not an Exception: the loop's thread dies

    engine.every("probe", once, 0.01)
    engine.serve()
    engine._threads["compute-probe"].join(5)
    engine.serve()  # the watchdog: a dead loop starts again
    engine._threads["compute-probe"].join(5)
    assert calls == ["ran", "ran"]


def test_start_waits_for_the_outcome_when_asked_and_no_longer(engine):
    """A waiting start returns once the outcome is recorded (the client's first poll finds it), or at its bound."""
    import threading

    user = Identity("alice", "tok", {})
    finisher = threading.Timer(0.05, lambda: engine.finish(engine.handler.runs[0], Status.SUCCEEDED, "done"))
    finisher.start()
    engine.start(user, "cluster", "submit", {}, "rid", wait_s=30)
    assert engine.tasks.updates == [("t1", Status.SUCCEEDED, "done", "holder-a")]  # recorded before start returned
    begun = time.monotonic()
    engine.start(user, "cluster", "submit", {}, "rid", wait_s=0.05)  # never finished: start gives up at its bound
    assert engine.handler.runs[1].ended.is_set() is False and time.monotonic() - begun < 30
