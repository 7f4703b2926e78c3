"""Live job output (GET /compute/jobs/{jobid}/output) through the gateway against the real Slurm: a job followed
while it runs, to its end and state; a reconnection with Last-Event-ID that loses and repeats nothing; stderr;
bob kept from alice's job; bad and hostile values; the bound on open streams.

No timing thresholds: a job that must still be running when its first lines arrive waits for a file the test
writes only after reading them. Every read has a timeout, so no test can hang."""

from __future__ import annotations

import base64
import json
import shlex
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from gateway_client import MACHINE, Api
from job_gates import Gate, remove_gates
from service_metrics import wait_streams_closed

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)
READ_TIMEOUT = 40  # the stream sends a comment at least every 15 s while idle
UNDECODABLE = b"\xff\xfe"


@dataclass
class Event:
    name: str
    id: str | None
    data: str
    at: float = field(default_factory=time.monotonic)

    def json(self) -> dict:
        return json.loads(self.data)


def open_stream(api: Api, jobid: str, headers: dict | None = None, **params: str) -> requests.Response:
    sent = {"Authorization": f"Bearer {api.site.token(api.user)}", "X-Machine-Name": MACHINE,
            "X-Request-ID": f"t-{uuid.uuid4().hex[:20]}", **(headers or {})}
    return requests.get(f"{api.base}/jobs/{jobid}/output", params=params, headers=sent, stream=True,
                        timeout=(10, READ_TIMEOUT))


def events(response: requests.Response, deadline_s: float = 120) -> Iterator[Event]:
    """The stream's events as a client parses them (comments skipped), until it ends or `deadline_s` passes."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    deadline, buffer = time.monotonic() + deadline_s, b""
    try:
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields: dict[str, list[str]] = {}
                for line in block.decode().split("\n"):
                    key, _, value = line.partition(":")
                    fields.setdefault(key, []).append(value.removeprefix(" "))
                if "event" in fields:
                    yield Event(fields["event"][0], fields.get("id", [None])[0], "\n".join(fields.get("data", [])))
            assert time.monotonic() < deadline, "the stream did not end in time"
    finally:
        response.close()


def follow(api: Api, jobid: str, last: str | None = None, reconnects: int = 5, **params: str) -> Iterator[Event]:
    """`events` as a client that reconnects would read them (from `last`, a Last-Event-ID, if given): a stream cut
    (a service restart) is resumed with `Last-Event-ID`; the `job` event of a resumed stream is left out."""
    for attempt in range(reconnects + 1):
        try:
            headers = {"Last-Event-ID": last} if last is not None else None
            for event in events(open_stream(api, jobid, headers=headers, **params)):
                if event.name != "job" or attempt == 0:
                    yield event
                last = event.id or last
            return
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
            if attempt == reconnects:
                raise
            time.sleep(1)


def submit(api: Api, body: str) -> dict:
    reply = api.post("/jobs/upload", files={"file": ("out.sh", f"#!/bin/bash\n{body}\n".encode())})
    task = api.outcome(reply, 201)
    assert task["status"] == "200", task
    return task["data"]


def gated_job(api: Api, site, lines: int = 3, after: int = 2, code: int = 0) -> tuple[dict, Gate]:
    """A job that prints `lines` lines, waits (at most a minute) until the test writes its gate file, prints `after`
    more (and to its own stderr file, with bytes that are not UTF-8 last) and exits with `code`."""
    gate = Gate(site, "job-output")
    body = ("#SBATCH --error=slurm-%j.err\n"
            f"for i in $(seq 1 {lines}); do echo \"line $i\"; done\n"
            f"{gate.wait_line}\n"
            f"for i in $(seq 1 {after}); do echo \"after $i\"; echo \"é err $i\" >&2; done\n"
            "printf '\\xff\\xfe' >&2\n"
            f"exit {code}")
    return submit(api, body), gate


def squeue_state(site, jobid: str) -> str:
    return site.shell("alice", f"squeue --states=all -h -j {int(jobid)} -o %T").stdout.strip()


@pytest.fixture(autouse=True)
def _no_gates_left(site) -> Iterator[None]:
    yield
    remove_gates(site, "job-output")


def test_a_running_job_is_followed_live_to_its_end(site, api):
    data, gate = gated_job(api, site, code=3)
    seen: list[Event] = []
    for event in follow(api, data["jobid"]):
        seen.append(event)
        if not gate.path.exists() and "line 3" in "".join(e.data for e in seen if e.name == "output"):
            # The first lines are here and the job is still waiting for its gate: it has not ended.
            assert squeue_state(site, data["jobid"]) == "RUNNING"
            gate.open()
    first = seen[0]
    assert first.name == "job" and first.id == "0"
    assert first.json() == {"jobid": data["jobid"], "stream": "out", "state": first.json()["state"], "offset": 0,
                            "encoding": "text"}
    text = "".join(e.data for e in seen if e.name == "output")
    assert text == "line 1\nline 2\nline 3\nafter 1\nafter 2\n"
    end = seen[-1]
    assert end.name == "end" and end.json() == {"jobid": data["jobid"], "state": "FAILED", "exit_code": "3:0",
                                                "offset": len(text)}
    offsets = [int(e.id) for e in seen if e.name == "output"]
    assert offsets == sorted(set(offsets)) and offsets[-1] == len(text) == int(end.id)
    assert site.path(data["job_file_out"]).read_text() == text


def test_hostile_output_paths_are_read_literally_with_allowed_commands_only(site, api):
    canary = f"job-output-canary-{uuid.uuid4().hex[:8]}"  # no slash: a file name; a shell would make it in ~
    # (A ` word=` inside a path cannot be told from scontrol's next key: jobfiles.job_files cuts it there.)
    name = f"o=u t $(touch {canary}) `touch {canary}` ';touch {canary}' -x.out"
    data = submit(api, f'#SBATCH --output="{name}"\necho hostile')
    rid = f"t-{uuid.uuid4().hex[:20]}"
    seen = list(events(open_stream(api, data["jobid"], headers={"X-Request-ID": rid})))
    assert "".join(e.data for e in seen if e.name == "output") == "hostile\n"
    assert seen[-1].name == "end" and not site.lexists(f"/home/alice/{canary}")
    assert site.path(data["job_file_out"]).name == name
    programs = {shlex.split(r["command"])[5] for r in site.audit_records({rid})}  # after `ID=.. timeout -k 2 5`
    assert programs <= {"scontrol", "stat", "dd"} and "dd" in programs


def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(site, api):
    data, gate = gated_job(api, site, lines=4, after=3)
    first: list[Event] = []
    for event in events(open_stream(api, data["jobid"])):  # leave after the first output
        first.append(event)
        if event.name == "output":
            break
    gate.open()
    resumed = list(follow(api, data["jobid"], last=first[-1].id, offset="0"))
    assert resumed[0].name == "job" and resumed[0].json()["offset"] == int(first[-1].id)
    text = "".join(e.data for e in first + resumed if e.name == "output")
    assert text == site.path(data["job_file_out"]).read_text()
    assert text == "".join(f"line {i}\n" for i in range(1, 5)) + "".join(f"after {i}\n" for i in range(1, 4))
    assert resumed[-1].name == "end" and resumed[-1].json()["state"] == "COMPLETED"
    # From an offset in the middle of the file, as a query parameter.
    again = list(follow(api, data["jobid"], offset="7"))
    assert "".join(e.data for e in again if e.name == "output") == text[7:]


def test_stderr_as_text_and_as_exact_bytes(site, api):
    data, gate = gated_job(api, site, lines=1, after=2)
    gate.open()
    expected = "é err 1\né err 2\n".encode() + UNDECODABLE
    as_text = list(follow(api, data["jobid"], stream="err"))
    assert as_text[0].json()["stream"] == "err"
    assert "".join(e.data for e in as_text if e.name == "output") == "é err 1\né err 2\n\ufffd\ufffd"
    assert as_text[-1].name == "end" and as_text[-1].json()["offset"] == len(expected)
    exact = list(follow(api, data["jobid"], stream="err", encoding="base64"))
    assert b"".join(base64.b64decode(e.data) for e in exact if e.name == "output") == expected
    assert site.path(data["job_file_err"]).read_bytes() == expected


def test_bob_cannot_follow_alices_job(site, api, bob_api):
    data, gate = gated_job(api, site, lines=1, after=0)
    try:
        reply = open_stream(bob_api, data["jobid"])
        assert reply.status_code == 404, reply.text
        body = reply.json()
        assert "not found" in body["error"] and "alice" not in reply.text and "line" not in reply.text
        assert reply.headers["X-Not-Found"]
    finally:
        gate.open()
    assert list(follow(api, data["jobid"]))[-1].name == "end"  # alice still can


@pytest.mark.parametrize("offset", ["-1", "1e3", "0x10", "٣", "1" * 19, str(2**60), "1;id", "$(id)", " 1"])
def test_bad_offsets_are_400(api, offset):
    reply = open_stream(api, "1", offset=offset)
    assert reply.status_code == 400 and "offset" in reply.json()["error"]
    # The header, or the lastEventId parameter where an HTTP header cannot carry the value (not latin-1).
    if offset.isascii():
        reply = open_stream(api, "1", headers={"Last-Event-ID": offset.strip() + "x"})
    else:
        reply = open_stream(api, "1", lastEventId=offset)
    assert reply.status_code == 400 and "Last-Event-ID" in reply.json()["error"]


@pytest.mark.parametrize("jobid", ["abc", "-1", "1_%5B1-3%5D", "%D9%A3", "1" * 40, "1%3Bid", "..", "%2E%2E"])
def test_bad_job_ids_are_400(api, jobid):
    reply = open_stream(api, jobid)
    assert reply.status_code in (400, 404) and reply.headers["Content-Type"].startswith("application/json")
    if reply.status_code == 400:
        assert reply.json()["description"]


def test_other_bad_requests(site, api):
    data = submit(api, "echo hi")
    assert list(follow(api, data["jobid"]))[-1].json()["state"] == "COMPLETED"  # the file is whole now
    assert open_stream(api, data["jobid"], stream="in").json()["error"] == "'stream' must be one of out, err"
    assert open_stream(api, data["jobid"], encoding="utf-16").status_code == 400
    past = open_stream(api, data["jobid"], offset="4")
    assert past.status_code == 400 and "past the end of the output: the file has 3 bytes" in past.json()["error"]
    assert open_stream(api, data["jobid"], offset="3").status_code == 200
    assert open_stream(api, "4000000000").status_code == 404
    no_machine = open_stream(api, data["jobid"], headers={"X-Machine-Name": ""})
    assert no_machine.status_code == 400
    unknown = open_stream(api, data["jobid"], headers={"X-Machine-Name": "nowhere"})
    assert unknown.status_code == 400 and unknown.headers["X-Machine-Does-Not-Exist"]


def test_open_streams_are_bounded_per_user(site, api):
    data, gate = gated_job(api, site, lines=1, after=0)
    processes = 2 * site.replicas("compute")  # gunicorn workers per replica
    held: list[requests.Response] = []
    try:
        refused = None
        for _ in range(4 * processes + 1):  # 4 per user and process
            reply = open_stream(api, data["jobid"])
            if reply.status_code == 429:
                refused = reply
                break
            assert reply.status_code == 200, reply.text
            held.append(reply)
        assert refused is not None, "no stream was refused"
        assert int(refused.headers["Retry-After"]) > 0 and "output streams" in refused.json()["error"]
        # The streams leave the user's command slots to her other requests (this one reads a script at once).
        missing = api.post("/jobs/path", targetPath=f"/home/alice/no-such-script-{uuid.uuid4().hex[:8]}.sh")
        assert missing.status_code == 400 and "X-Invalid-Path" in missing.headers
    finally:
        for reply in held:
            reply.close()
        gate.open()
    # A stream whose client left frees its slot at its next poll (within the 5 s of an idle one), in every process.
    wait_streams_closed(site, "compute", "job_output")
