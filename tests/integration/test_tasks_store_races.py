"""Writes to a task that race another change, against the site's real Redis (tasks/store.py). The other change is
made at a fixed point, between the update's read and its write, so each test gives the same answer every run.

A task invalidated by its owner while its work runs must stay invalidated when the work's outcome arrives (the CI
run of 2026-12-06 saw a download's failure, caused by the invalidation itself, overwrite the 302 with 118)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from common.task_status import Status
from tasks.store import LeaseLost, TaskStore, UnknownTask


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


class ChangedAfterRead(TaskStore):
    """A store whose next update or renewal meets `change` made by another client right after it read the task."""

    def __init__(self, client: redis.Redis, change: Callable[[], object]) -> None:
        super().__init__(client)
        self.pending: Callable[[], object] | None = change

    def _mine(self, task: dict[str, Any] | None, task_id: str, user: str) -> dict[str, Any]:  # type: ignore[override]
        if self.pending is not None:
            change, self.pending = self.pending, None
            change()
        return super()._mine(task, task_id, user)


@pytest.fixture
def user(client) -> Iterator[str]:
    name = f"t-races-{uuid.uuid4().hex[:10]}"
    yield name
    for key in [*client.scan_iter(match=f"firecrest:*{name}")]:
        client.delete(key)


def status(client: redis.Redis, tid: str) -> str:
    task = TaskStore(client).get(tid)
    assert task is not None
    return str(task["status"])


def started(client: redis.Redis, user: str) -> str:
    return TaskStore(client).create(user, "test", "cluster", lease_s=3600, holder="one")["task_id"]


@pytest.mark.parametrize("holder", ["one", None])
def test_an_outcome_after_the_owner_deleted_the_task_is_refused(client, user, holder):
    tid = started(client, user)
    other = TaskStore(client)
    racing = ChangedAfterRead(client, lambda: other.delete(tid, user))
    with pytest.raises(UnknownTask, match="deleted"):
        racing.update(tid, user, Status.DOWNLOAD_FAILED, "the object went away", holder=holder)
    assert status(client, tid) == Status.INVALID


def test_an_update_after_another_process_claimed_the_task_is_refused(client, user):
    tid = started(client, user)
    racing = ChangedAfterRead(client, lambda: client.set(f"firecrest:holder:{tid}", "another"))
    with pytest.raises(LeaseLost):
        racing.update(tid, user, Status.SUCCEEDED, holder="one")
    assert status(client, tid) == Status.QUEUED


def test_a_renewal_after_the_task_ended_is_refused(client, user):
    tid = started(client, user)
    other = TaskStore(client)
    racing = ChangedAfterRead(client, lambda: other.update(tid, user, Status.SUCCEEDED, holder="one"))
    with pytest.raises(UnknownTask, match="finished"):
        racing.renew(tid, user, 60, holder="one")
    assert client.zscore("firecrest:inflight:test", tid) is None


def test_an_update_that_meets_an_unrelated_change_is_applied_on_what_is_there(client, user):
    tid = started(client, user)
    other = TaskStore(client)
    racing = ChangedAfterRead(client, lambda: other.update(tid, user, Status.IN_PROGRESS, "half", holder="one"))
    assert racing.update(tid, user, Status.SUCCEEDED, "all", holder="one")["status"] == Status.SUCCEEDED
    task = other.get(tid)
    assert task is not None and task["data"] == "all"
