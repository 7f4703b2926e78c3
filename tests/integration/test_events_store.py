"""The event store against the site's real Redis (tasks/events.py, tasks/store.py): every task change in its user's
stream in the same transaction, trimming detected for `reset`, compare-and-publish of job states (never twice,
never backwards, only by the poll's holder), claims of job polls, and the per-user stream slots with leases.

Each test uses user names of its own (never alice's or bob's keys) and removes its keys afterwards."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from common.task_status import Status
from tasks import events
from tasks.events import EventStore, TooManyStreams
from tasks.store import TaskStore


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def user(client) -> Iterator[str]:
    name = f"t-events-{uuid.uuid4().hex[:10]}"
    yield name
    for pattern in (f"firecrest:events:*{name}", "firecrest:user:" + name):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    client.zrem("firecrest:events:watched:all", f"cluster/{name}")


@pytest.fixture
def store(client) -> EventStore:
    return EventStore.beside(client, 2)


def entries(client, stream: str) -> list[dict]:
    return [json.loads(fields[b"data"]) for _, fields in client.xrange(stream)]


def test_every_task_change_is_in_the_users_stream(client, store, user):
    tasks = TaskStore(client)
    created = tasks.create(user, "test", "cluster", lease_s=3600)
    tid = created["task_id"]
    tasks.update(tid, user, "101", "running")
    tasks.update(tid, user, "200", {"result": "done"})
    tasks.delete(tid, user)
    seen = entries(client, events.task_stream(user))
    assert [t["status"] for t in seen] == ["100", "101", "200", Status.INVALID]
    assert {t["task_id"] for t in seen} == {tid}
    assert seen[2]["data"] == {"result": "done"} and seen[2]["task_url"] == f"/tasks/{tid}"
    assert client.ttl(events.task_stream(user)) > 0


def test_a_refused_update_publishes_nothing(client, store, user):
    tasks = TaskStore(client)
    tid = tasks.create(user, "test", "cluster", lease_s=3600, holder="one")["task_id"]
    with pytest.raises(Exception, match=tid):
        tasks.update(tid, user, "200", holder="another")  # LeaseLost: the transaction did not happen
    assert len(entries(client, events.task_stream(user))) == 1


def test_trimmed_ids_are_not_resumable(client, store, user):
    stream = events.task_stream(user)
    ids = [client.xadd(stream, {"data": "{}"}).decode() for _ in range(5)]
    assert store.resumable(stream, ids[0]) and store.resumable(stream, "0-0")
    assert store.tail(stream) == ids[-1]
    client.xtrim(stream, maxlen=2, approximate=False)
    assert not store.resumable(stream, ids[0]) and not store.resumable(stream, "0-0")
    assert store.resumable(stream, ids[3])  # the oldest kept: nothing after it was lost
    # the newest trimmed one: Redis does not say which ids were trimmed, so a reset (the state again, nothing lost)
    assert not store.resumable(stream, ids[2])
    assert [i for i, _ in store.read(stream, ids[2], 0.1)] == ids[3:]
    assert not store.resumable(events.task_stream(user + "-none"), "5-0")
    assert store.resumable(events.task_stream(user + "-none"), "0-0")


def job(jobid: str, state: str, final: bool = False) -> dict:
    return {"jobid": jobid, "name": "n", "state": state, "final": final, "system": "cluster",
            "exit_code": "0:0" if final else None}


def test_compare_and_publish(client, store, user):
    store.watch("cluster", user, "sealed", 60)
    claimed = [w for w in store.claim("h1", 20, 100) if w.user == user]
    assert claimed and claimed[0].sealed_token == "sealed" and claimed[0].known == {}
    stream = events.job_stream("cluster", user)

    assert store.publish_jobs("cluster", user, "h1", {"1": job("1", "PENDING")}, [], 2) == 1
    assert store.publish_jobs("cluster", user, "h1", {"1": job("1", "PENDING")}, [], 2) == 0  # no change
    assert store.publish_jobs("cluster", user, "h1", {"1": job("1", "COMPLETED", True)}, [], 2) == 1
    assert store.publish_jobs("cluster", user, "h1", {"1": job("1", "RUNNING")}, [], 2) == 0  # never backwards
    assert store.publish_jobs("cluster", user, "h2", {"2": job("2", "PENDING")}, [], 2) == -1  # not the holder
    assert [j["state"] for j in entries(client, stream)] == ["PENDING", "COMPLETED"]
    assert store.snapshot("cluster", user) == [job("1", "COMPLETED", True)]
    store.publish_jobs("cluster", user, "h1", {}, ["1"], 2)
    assert store.snapshot("cluster", user) == []


def test_one_poll_at_a_time_and_none_without_listeners(client, store, user):
    store.watch("cluster", user, "sealed", 60)
    first = [w for w in store.claim("h1", 20, 100) if w.user == user]
    again = [w for w in store.claim("h2", 20, 100) if w.user == user]
    assert len(first) == 1 and again == []  # leased to h1 for 20 s
    store.watch("cluster", user, "sealed", 60)  # a heartbeat leaves the lease alone
    assert [w for w in store.claim("h2", 20, 100) if w.user == user] == []
    store.watch("cluster", user, "sealed", 60, opening=True)  # a new stream: polled now, by whoever takes it
    assert [w.user for w in store.claim("h2", 20, 100) if w.user == user] == [user]
    assert store.publish_jobs("cluster", user, "h1", {"1": job("1", "PENDING")}, [], 2) == -1  # h1 lost it
    client.delete(events.key("listeners", events.member("cluster", user)))
    client.zadd(events.key("watched", "all"), {events.member("cluster", user): 0})  # due now
    assert [w for w in store.claim("h2", 20, 100) if w.user == user] == []
    assert client.zscore(events.key("watched", "all"), events.member("cluster", user)) is None


def test_the_longest_lived_token_is_kept(client, store, user):
    store.watch("cluster", user, "long", 300)
    store.watch("cluster", user, "short", 30)
    assert client.get(events.key("token", events.member("cluster", user))) == b"long"


def test_stream_slots_per_user_with_leases(client, store, user):
    slots = [store.take_slot(user, 3) for _ in range(3)]
    with pytest.raises(TooManyStreams) as refused:
        store.take_slot(user, 3)
    assert refused.value.retry_after_s >= 1
    store.free_slot(user, slots[0])
    slots[0] = store.take_slot(user, 3)
    # a process killed while holding a slot: its lease runs out, and the slot is free again
    client.zadd(events.key("slots", user), {slots[1]: time.time() - 1})
    store.take_slot(user, 3)
    assert client.zcard(events.key("slots", user)) == 3
