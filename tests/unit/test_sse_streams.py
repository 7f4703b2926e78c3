"""An event stream's logic without Redis (tasks/events_stream.py, tasks/events.py's pure parts): where it starts,
how it resumes, when it resets and ends; the job poller's parsing and what it publishes (compute/job_events.py).
The Redis side (scripts, transactions, leases) is tested against the real Redis in tests/integration."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from flask import Flask, g

from common.auth import Identity
from common.commands import Output
from common.errors import TooManyRequests
from compute import job_events
from compute.job_events import JobPoller, JobStates, exit_code
from tasks import events, events_stream
from tasks import events_routes as routes
from tasks.events_stream import Stream


class FakeStore:
    """What Stream reads: a list of (id, data) entries, `trimmed` up to an id."""

    def __init__(self, entries: list[tuple[str, str]], trimmed: str = "0-0", exists: bool = True) -> None:
        self.entries, self.trimmed, self.exists = entries, trimmed, exists
        self.reads = 0

    def tail(self, stream: str) -> str:
        return self.entries[-1][0] if self.entries else "0-0"

    def resumable(self, stream: str, last_id: str) -> bool:
        if not self.exists:
            return last_id == "0-0"
        return events.compare_ids(last_id, self.trimmed) >= 0

    def read(self, stream: str, after: str, block_s: float) -> list[tuple[str, str]]:
        self.reads += 1
        return [(i, d) for i, d in self.entries if events.compare_ids(i, after) > 0]


def task(tid: str, status: str) -> str:
    return json.dumps({"task_id": tid, "status": status})


def parse(pieces: list[str]) -> list[tuple[str | None, str | None, Any]]:
    out = []
    for piece in pieces:
        fields = dict(line.split(": ", 1) for line in piece.strip().split("\n") if ": " in line)
        if "data" in fields:
            out.append((fields.get("event"), fields.get("id"), json.loads(fields["data"])))
    return out


def run(store: FakeStore, last: str | None, wanted=lambda t: True, idle_s: float = 0.05,
        current: list[str] | None = None, ends_at: float | None = None) -> list[str]:
    stream = Stream(store, "k", "task", wanted, lambda: current or [], idle_s, ends_at or time.time() + 60,
                    lambda: None)
    return list(stream.pieces(last))


ENTRIES = [("10-0", task("a", "100")), ("11-0", task("a", "200")), ("12-0", task("b", "100"))]


def test_fresh_stream_starts_with_the_current_state_at_the_tail():
    store = FakeStore(ENTRIES)
    got = parse(run(store, None, current=[task("a", "200"), task("b", "100")]))
    assert got[:2] == [("task", "12-0", {"task_id": "a", "status": "200"}),
                       ("task", "12-0", {"task_id": "b", "status": "100"})]
    assert got[-1][0] == "end" and got[-1][2]["reason"] == "idle"
    assert len(got) == 3  # nothing before the tail is replayed


def test_resume_gives_exactly_what_follows_the_id():
    got = parse(run(FakeStore(ENTRIES), "10-0", current=[task("x", "1")]))
    assert [(i, d["status"]) for _, i, d in got[:-1]] == [("11-0", "200"), ("12-0", "100")]


def test_an_id_older_than_what_is_kept_resets_to_the_current_state():
    got = parse(run(FakeStore(ENTRIES, trimmed="10-0"), "9-5", current=[task("a", "200")]))
    assert got[0][0] == "reset" and got[0][2]["last_event_id"] == "9-5"
    assert got[1] == ("task", "12-0", {"task_id": "a", "status": "200"})
    assert got[2][0] == "end"


def test_an_empty_stream_resumes_from_zero_without_reset():
    got = parse(run(FakeStore([], exists=False), "0-0"))
    assert [g[0] for g in got] == ["end"]


def test_only_the_wanted_tasks():
    got = parse(run(FakeStore(ENTRIES), "0-0", wanted=lambda t: t["task_id"] == "b"))
    assert [(g[1], g[2]["task_id"]) for g in got[:-1]] == [("12-0", "b")]


def test_stream_ends_when_the_token_expires():
    got = parse(run(FakeStore(ENTRIES), "12-0", idle_s=60, ends_at=time.time() - 1))
    assert got[-1][0] == "end" and got[-1][2]["reason"] == "token-expired"


def test_heartbeats_while_idle(monkeypatch):
    monkeypatch.setattr(events_stream, "HEARTBEAT_S", 0.6)
    pieces = run(FakeStore(ENTRIES), "12-0", idle_s=1.5)
    assert ": keep-alive\n\n" in pieces
    assert pieces[0] == "retry: 2000\n\n"


def test_stream_ids_checked_in_ascii():
    assert events.STREAM_ID.fullmatch("1796544417123-0")
    for bad in ("1-", "-1", "1-2-3", "١-0", "1" * 16 + "-0", "1-0\n", " 1-0"):
        assert not events.STREAM_ID.fullmatch(bad), bad
    assert events.compare_ids("2-0", "10-0") < 0 and events.compare_ids("10-1", "10-0") > 0


def test_large_task_data_is_left_out_of_the_event():
    small = json.loads(events.task_event({"task_id": "a", "user": "u", "data": "x"}))
    assert small["data"] == "x" and small["task_url"] == "/tasks/a"
    big = json.loads(events.task_event({"task_id": "a", "user": "u", "data": "x" * 20000}))
    assert big["data"] is None and big["data_omitted"] is True


# ---------------------------------------------------------------------------------------------------------------
# compute/job_events.py

SQUEUE = {"jobs": [
    {"job_id": 7, "user_name": "alice", "name": "a", "job_state": "RUNNING", "exit_code": 0},
    {"job_id": 8, "user_name": "alice", "name": "b", "job_state": "FAILED", "exit_code": 768},
    {"job_id": 9, "user_name": "bob", "name": "c", "job_state": "PENDING", "exit_code": 0},
    {"job_id": 11, "user_name": "alice", "name": "d", "job_state": ["COMPLETED"], "array_job_id": 10,
     "array_task_id": 1, "exit_code": {"status": ["SUCCESS"], "return_code": {"set": True, "number": 0},
                                        "signal": {"id": {"set": True, "number": 0}}}},
]}


def test_exit_codes_as_sacct_prints_them():
    assert exit_code(768) == "3:0" and exit_code(9) == "0:9" and exit_code(0) == "0:0" and exit_code(None) is None
    assert exit_code({"return_code": {"set": True, "number": 2}, "signal": {"id": {"set": True, "number": 15}}}) \
        == "2:15"


def test_job_states_of_the_user_only():
    command = JobStates("cluster", "alice")
    assert command.argv() == ["squeue", "--json", "--user=alice"]
    jobs = command.parse(Output(0, json.dumps(SQUEUE).encode(), b""))
    assert set(jobs) == {"7", "8", "10_1"}
    assert jobs["7"] == {"jobid": "7", "name": "a", "state": "RUNNING", "final": False, "system": "cluster",
                         "exit_code": None}
    assert (jobs["8"]["state"], jobs["8"]["final"], jobs["8"]["exit_code"]) == ("FAILED", True, "3:0")
    assert jobs["10_1"]["exit_code"] == "0:0"


class FakeRemote:
    def __init__(self, squeue: dict, sacct: list[dict]) -> None:
        self.squeue, self.sacct, self.commands = squeue, sacct, []

    def run(self, identity, system, command, rid=""):
        self.commands.append(command.argv())
        if command.name == "squeue":
            return command.parse(Output(0, json.dumps(self.squeue).encode(), b""))
        return self.sacct


class Who:
    username = "alice"
    token = "t"


def test_a_job_that_left_the_queue_is_resolved_by_sacct_and_forgotten_ones_dropped():
    known = {"7": {"final": False}, "5": {"final": False}, "4": {"final": True}, "3": {"final": False}}
    remote = FakeRemote(SQUEUE, [{"jobid": "5", "state": "CANCELLED by 1000", "name": "x", "exit_code": "0:15"},
                                 {"jobid": "3", "state": "RUNNING", "name": "y", "exit_code": "0:0"}])
    poller = JobPoller(None, remote, None)  # type: ignore[arg-type]
    jobs, gone = poller.observe(Who(), "cluster", known)  # type: ignore[arg-type]
    assert gone == ["4"]
    assert jobs["5"]["state"] == "CANCELLED" and jobs["5"]["final"] and jobs["5"]["exit_code"] == "0:15"
    assert "3" not in jobs  # sacct not final yet (slurmdbd lags): left as it was, asked again next poll
    assert remote.commands[1][-1] == "--jobs=5,3"


def test_claims_no_more_polls_than_free_workers():
    asked = []

    class Tasks:
        def claim_job_polls(self, holder, lease_s, limit):
            asked.append(limit)
            return []

    poller = JobPoller(Tasks(), None, None)  # type: ignore[arg-type]
    assert poller.claim_once() == 0 and asked == [job_events.WORKERS]
    assert poller.claim_once() == 0 and asked == [job_events.WORKERS] * 2  # nothing taken: all free again


@pytest.mark.parametrize("member", [("cluster", "alice"), ("a/b", "bob")])
def test_members_split_back(member):
    assert events.split_member(events.member(*member)) == member


# ---------------------------------------------------------------------------------------------------------------
# tasks/events_routes.py: the two bounds on open streams, and that a stream gives its slots back


class FakeSlots:
    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, set()

    def take_slot(self, user: str, limit: int) -> str:
        if len(self.held) >= self.limit:
            raise events.TooManyStreams(7)
        slot = f"s{len(self.held)}-{time.monotonic()}"
        self.held.add(slot)
        return slot

    def free_slot(self, user: str, slot: str) -> None:
        self.held.discard(slot)

    def renew_slot(self, user: str, slot: str) -> None:
        pass


def test_per_process_and_per_user_bounds_and_slots_given_back():
    app, slots = Flask("t"), FakeSlots(limit=2)
    app.extensions.update({routes.PROCESS_SLOTS: threading.BoundedSemaphore(3), routes.EVENTS: slots})

    def make(beat):
        return Stream(FakeStore([]), "k", "task", lambda t: True, list, 1, time.time() + 60, beat)

    with app.test_request_context("/events"):
        g.identity = Identity("alice", "t", {"exp": time.time() + 60})
        first, second = routes.open_stream(make), routes.open_stream(make)
        with pytest.raises(TooManyRequests) as refused:  # the user's bound (across processes, in Redis)
            routes.open_stream(make)
        assert refused.value.headers() == {"Retry-After": "7"}
        slots.limit = 10
        third = routes.open_stream(make)
        with pytest.raises(routes.ProcessBusy) as busy:  # this process's bound
            routes.open_stream(make)
        assert busy.value.status == 503 and busy.value.headers() == {"Retry-After": "2"}
        for reply in (first, second, third):
            reply.close()  # never read: both slots are given back all the same
        assert slots.held == set()
        routes.open_stream(make).close()
