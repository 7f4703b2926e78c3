"""Event streams (GET /tasks/events, GET /tasks/events/jobs) through the gateway against the real site: a submitted
job's task seen from 100 to 200 and its job from PENDING/RUNNING to COMPLETED with its exit code; a reconnection
with Last-Event-ID that loses nothing (compared with a stream that stayed open); bob never sees alice's tasks or
jobs; the per-user bound on open streams (429); bad and hostile values (4xx).

No timing thresholds: the job waits for a file the test writes once it has seen the job running (in the first
test; the second opens it at once, and checks the final state). Every read has
a timeout and every stream a deadline, so no test can hang. Nothing assumes one process or one replica."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from gateway_client import MACHINE, Api
from job_gates import Gate, remove_gates
from service_metrics import wait_streams_closed

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)
READ_TIMEOUT = 40  # a stream sends a comment at least every 15 s
STREAMS_PER_USER = 8  # tasks/events_routes.py


@dataclass
class Event:
    name: str
    id: str | None
    data: str

    def json(self) -> dict:
        return json.loads(self.data)


def task_reader(site, user: str, path: str = "/events", headers: dict | None = None, machine: str | None = None,
           **params: str) -> Reader:
    return Reader(lambda more: open_stream(site, user, path, {**(headers or {}), **more}, machine, **params))


def job_reader(site, user: str, headers: dict | None = None, **params: str) -> Reader:
    return task_reader(site, user, "/events/jobs", headers, MACHINE, **params)


def open_stream(site, user: str, path: str = "/events", headers: dict | None = None,
                machine: str | None = None, **params: str) -> requests.Response:
    sent = {"Authorization": f"Bearer {site.token(user)}", "X-Request-ID": f"t-{uuid.uuid4().hex[:20]}",
            **({"X-Machine-Name": machine} if machine else {}), **(headers or {})}
    return requests.get(f"{site.env['FIRECREST_URL']}/tasks{path}", params=params, headers=sent, stream=True,
                        timeout=(10, READ_TIMEOUT))


def jobs_stream(site, user: str, headers: dict | None = None, **params: str) -> requests.Response:
    return open_stream(site, user, "/events/jobs", headers, MACHINE, **params)


class Reader:
    """A stream's events as a client parses them (comments and `retry:` skipped), each read bounded. Like a browser's
    EventSource, it reconnects with Last-Event-ID when the connection drops (the site's services may be restarted
    while the tests run): what the tests check is then also what a reconnection gives."""

    def __init__(self, opener: Callable[[dict], requests.Response], patience_s: float = 60) -> None:
        self.opener, self.patience_s = opener, patience_s
        self.seen: list[Event] = []
        self.reconnections = 0
        self.response = self._open({})

    def _open(self, headers: dict) -> requests.Response:
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                response = self.opener(headers)
                if response.status_code not in (502, 503, 504) or time.monotonic() > deadline:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        self.chunks = response.iter_content(chunk_size=None)
        self.buffer = b""
        return response

    def _chunk(self) -> bytes | None:
        try:
            return next(self.chunks, None)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            last = next((e.id for e in reversed(self.seen) if e.id), None)
            self.response.close()
            self.reconnections += 1
            self.response = self._open({"Last-Event-ID": last} if last else {})
            return b""

    def __iter__(self) -> Iterator[Event]:
        while True:
            while b"\n\n" not in self.buffer:
                chunk = self._chunk()
                if chunk is None:
                    return
                self.buffer += chunk
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            fields: dict[str, list[str]] = {}
            for line in block.decode().split("\n"):
                key, _, value = line.partition(":")
                fields.setdefault(key, []).append(value.removeprefix(" "))
            if "event" in fields:
                event = Event(fields["event"][0], fields.get("id", [None])[0], "\n".join(fields.get("data", [])))
                self.seen.append(event)
                yield event

    def until(self, done, deadline_s: float = 120) -> list[Event]:
        """Events until `done(event)` is true (the matching one included); fails if the stream ends first."""
        deadline, got = time.monotonic() + deadline_s, []
        for event in self:
            got.append(event)
            if done(event):
                return got
            assert time.monotonic() < deadline, f"not seen in {deadline_s} s: {[e.data[:80] for e in got]}"
        raise AssertionError(f"the stream ended first: {[e.data[:80] for e in got]}")

    def rest(self) -> list[Event]:
        """Every event until the stream ends by itself (opened with a short `idle`)."""
        return list(self)

    def close(self) -> None:
        self.response.close()


def is_task(task_id: str, status: str | None = None):
    return lambda e: e.name == "task" and e.json()["task_id"] == task_id and status in (None, e.json()["status"])


def is_job(event: Event, jobid: str) -> bool:
    return event.name == "job" and event.json()["jobid"] == jobid


def submit_gated(api: Api, site, code: int = 0) -> tuple[str, Gate]:
    """A job that waits (at most a minute) for its gate file, then exits with `code`: (its task, the gate)."""
    gate = Gate(site, "events")
    body = f"{gate.wait_line}\nexit {code}\n"
    reply = api.post("/jobs/upload", files={"file": ("events.sh", f"#!/bin/bash\n{body}".encode())})
    return api.started(reply, 201), gate


@pytest.fixture(autouse=True)
def _no_gates_left(site) -> Iterator[None]:
    yield
    remove_gates(site, "events")


def test_task_and_job_of_a_submission(site, api, bob_api):
    tasks = task_reader(site, "alice")
    jobs = job_reader(site, "alice")
    task_id, gate = submit_gated(api, site)
    # bob's streams, open from the start, asked for alice's task by id: it must never come
    bob_tasks = task_reader(site, "bob", tasks=task_id, idle="5")

    seen = tasks.until(is_task(task_id, "200"))
    statuses = [e.json()["status"] for e in seen if is_task(task_id)(e)]
    assert statuses[0] == "100" and statuses[-1] == "200", statuses
    assert statuses == sorted(statuses), statuses
    done = [e for e in seen if is_task(task_id, "200")(e)][0].json()
    assert done["user"] == "alice" and done["task_url"] == f"/tasks/{task_id}"
    jobid = done["data"]["jobid"]

    bob_jobs = job_reader(site, "bob", jobs=jobid, idle="5")
    running = jobs.until(lambda e: is_job(e, jobid) and e.json()["state"] in ("PENDING", "RUNNING"))
    assert running[-1].json()["final"] is False and running[-1].json()["exit_code"] is None
    gate.open()
    final = jobs.until(lambda e: is_job(e, jobid) and e.json()["final"])[-1].json()
    assert (final["state"], final["exit_code"], final["system"]) == ("COMPLETED", "0:0", MACHINE)
    tasks.close()
    jobs.close()
    # a job stream resumed from the running state gets exactly what followed it
    since = [e for e in jobs.seen if is_job(e, jobid)]
    cut = next(i for i, e in enumerate(since) if e.id == running[-1].id)
    resumed = job_reader(site, "alice", jobs=jobid, idle="2", headers={"Last-Event-ID": running[-1].id})
    assert [(e.id, e.data) for e in resumed.rest() if e.name == "job"] == [(e.id, e.data) for e in since[cut + 1:]]

    assert not [e for e in bob_tasks.rest() if e.name == "task"]
    assert not [e for e in bob_jobs.rest() if e.name == "job"]
    assert [e.name for e in bob_tasks.seen] == ["end"] and bob_tasks.seen[-1].json()["reason"] == "idle"


def test_job_exit_code_of_a_failed_job(site, api):
    jobs = job_reader(site, "alice")
    task_id, gate = submit_gated(api, site, code=3)
    task = api.wait(task_id)
    assert task["status"] == "200", task
    jobid = task["data"]["jobid"]
    gate.open()
    final = jobs.until(lambda e: is_job(e, jobid) and e.json()["final"])[-1].json()
    assert (final["state"], final["exit_code"]) == ("FAILED", "3:0")
    jobs.close()
    # a fresh stream of that one job starts with its current state
    again = job_reader(site, "alice", jobs=jobid, idle="3")
    first = again.until(lambda e: e.name == "job")[-1]
    assert first.json() == final and first.id
    again.close()


def test_reconnect_with_last_event_id_loses_nothing(site, api):
    reference = task_reader(site, "alice")  # stays open throughout
    first = task_reader(site, "alice")
    a = api.started(api.get("/jobs"))
    cut = first.until(is_task(a))[-1]
    first.close()
    b, c = api.started(api.get("/jobs")), api.started(api.get("/jobs"))
    for task_id in (a, b, c):
        assert api.wait(task_id)["status"] == "200"

    resumed = task_reader(site, "alice", headers={"Last-Event-ID": cut.id})
    ours = {a, b, c}
    got = resumed.until(lambda e: all(any(is_task(t, "200")(x) for x in resumed.seen) for t in (b, c)))
    resumed.close()
    assert not [e for e in got if e.name == "reset"]
    key = [tuple(int(n) for n in e.id.split("-")) for e in got if e.id]
    assert key == sorted(key) and key[0] > tuple(int(n) for n in cut.id.split("-")), "replayed or out of order"
    after_cut = [(e.id, e.data) for e in got if e.name == "task" and e.json()["task_id"] in ours]

    expected = reference.until(lambda e: e.id == got[-1].id)
    reference.close()
    cut_at = [e.id for e in expected].index(cut.id)
    wanted = [(e.id, e.data) for e in expected[cut_at + 1:] if e.name == "task" and e.json()["task_id"] in ours]
    assert after_cut == wanted
    assert any(is_task(b, "100")(Event("task", i, d)) for i, d in after_cut)


def test_task_filter_and_fresh_state(site, api):
    task_id = api.started(api.get("/jobs"))
    assert api.wait(task_id)["status"] == "200"
    reader = task_reader(site, "alice", tasks=f"{task_id},{'0' * 32}", idle="2")
    events = reader.rest()
    assert [e.name for e in events] == ["task", "end"]
    assert events[0].json()["task_id"] == task_id and events[0].json()["status"] == "200" and events[0].id


def test_another_users_task_ids_are_never_streamed(site, api):
    task_id = api.started(api.get("/jobs"))
    reader = task_reader(site, "bob", tasks=task_id, idle="3")
    assert api.wait(task_id)["status"] == "200"
    assert [e.name for e in reader.rest()] == ["end"]


def test_per_user_limit_on_open_streams(site):
    held, refused = [], None
    try:
        for _ in range(STREAMS_PER_USER + 1):
            reply = open_stream(site, "bob", idle="60")
            if reply.status_code == 429:
                refused = reply
                break
            assert reply.status_code == 200, reply.text
            held.append(reply)
        assert refused is not None, "no stream refused"
        assert len(held) <= STREAMS_PER_USER
        assert int(refused.headers["Retry-After"]) >= 1
        assert "event streams" in refused.json()["description"].lower()
        # the job streams count against the same bound
        assert jobs_stream(site, "bob").status_code == 429
        # alice is not bound by bob's streams
        other = open_stream(site, "alice", idle="1")
        assert other.status_code == 200
        other.close()
    finally:
        for reply in held:
            reply.close()
        # Streams a client closed give their slots back when the server next writes to them (a heartbeat, at
        # most 15 s later): leave the user as the test found them.
        wait_streams_closed(site, "tasks", "events", deadline_s=90)


@pytest.mark.parametrize("value", ["abc", "1-2-3", "-1", "١٢٣-0", "$(id)-0", "1" * 40 + "-0", "1 -0", "../1-0"])
def test_malformed_last_event_id(site, value):
    tries = [({}, {"lastEventId": value})]
    if value.isascii():  # HTTP headers carry no other characters; the query parameter does
        tries.append(({"Last-Event-ID": value}, {}))
    for headers, params in tries:
        reply = open_stream(site, "alice", headers=headers, **params)
        assert reply.status_code == 400, reply.text
        assert "Last-Event-ID" in reply.json()["error"]


@pytest.mark.parametrize("params", [
    {"tasks": "../etc"}, {"tasks": "a;b"}, {"tasks": "$(id)"}, {"tasks": ","}, {"tasks": "x" * 65},
    {"tasks": ",".join(["a"] * 1001)}, {"idle": "0"}, {"idle": "99999"}, {"idle": "٣"}, {"idle": "-1"},
])
def test_bad_task_stream_parameters(site, params):
    reply = open_stream(site, "alice", **params)
    assert reply.status_code == 400, reply.text
    assert reply.json()["description"]


@pytest.mark.parametrize("jobs", ["1;2", "-1", "1x", "$(id)", "`id`", "1\n2", "١٢"])
def test_bad_job_ids(site, jobs):
    reply = jobs_stream(site, "alice", jobs=jobs)
    assert reply.status_code == 400, reply.text
    assert "job id" in reply.json()["error"]


@pytest.mark.parametrize("machine", ["nosuch", "$(id)", "../cluster", "cluster;id", "x" * 4000])
def test_unknown_or_missing_machine(site, machine):
    reply = open_stream(site, "alice", "/events/jobs", machine=machine)
    assert reply.status_code == 400
    assert reply.headers["X-Machine-Does-Not-Exist"] == "Machine does not exist"
    reply = open_stream(site, "alice", "/events/jobs")
    assert reply.status_code == 400 and "machine" in reply.json()["description"].lower()


def test_no_token_and_internal_routes_closed(site):
    url = f"{site.env['FIRECREST_URL']}/tasks"
    assert requests.get(f"{url}/events", timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {site.token('alice')}"}
    for path in ("/events/jobs/claim", "/events/jobs/publish", "/events"):
        assert requests.post(url + path, json={}, headers=headers, timeout=10).status_code == 405


def test_keep_alive_through_the_gateway_unbuffered(site):
    """A comment comes while the stream is idle, and comes alone: nothing between the service and the client
    holds the stream back until it ends (a buffering proxy would deliver it with the `end` event)."""
    reply = open_stream(site, "bob", tasks="0" * 32, idle="17")  # no such task: nothing but keep-alives and the end
    assert reply.status_code == 200
    chunks = []
    try:
        for chunk in reply.iter_content(chunk_size=None):
            chunks.append(chunk)
    finally:
        reply.close()
    text = b"".join(chunks)
    assert b": keep-alive\n\n" in text and text.rstrip().endswith(b"}")
    alive = next(i for i, c in enumerate(chunks) if b"keep-alive" in b"".join(chunks[: i + 1]))
    assert b"event: end" not in b"".join(chunks[: alive + 1])
