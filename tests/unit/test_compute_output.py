"""compute/output.py: the request's values, the bound on open streams and the stream itself, against a fake cluster
whose file grows and whose job changes state on a fake clock (the real site: tests/e2e/test_job_output.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from common import errors
from common.slurm.output import FileSize, JobView, ReadRange, ShowJob
from compute import output
from compute.output import Bounds, Follow, StreamSlots, Wanted, prepare, wanted, whole_utf8

BOUNDS = Bounds()
PATH = "/home/alice/slurm-7.out"


class Cluster:
    """A job and its output file, changed by `at(t, change)` as the fake clock passes t."""

    def __init__(self, state: str = "RUNNING", data: bytes | None = b"") -> None:
        self.job: JobView | None = JobView("7", "alice", state, "0:0", PATH, "/home/alice/e 7.err")
        self.data = None if data is None else bytearray(data)
        self.now = 0.0
        self.plan: list[tuple[float, Callable[[Cluster], None]]] = []
        self.busy = 0  # the next commands refused as the user's slots are all taken
        self.failing = 0  # the next commands fail
        self.reads: list[tuple[int, int]] = []

    def at(self, t: float, change: Callable[[Cluster], None]) -> Cluster:
        self.plan.append((t, change))
        return self

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for t, change in [p for p in self.plan if p[0] <= self.now]:
            change(self)
            self.plan.remove((t, change))

    def run(self, command, stdin=None, max_output=None):
        if self.busy:
            self.busy -= 1
            raise errors.TooManyRequests("busy", "busy")
        if self.failing:
            self.failing -= 1
            raise errors.MachineNotAvailable("down")
        if isinstance(command, ShowJob):
            return self.job
        if isinstance(command, FileSize):
            return None if self.data is None else len(self.data)
        assert isinstance(command, ReadRange) and command.path == PATH
        self.reads.append((command.offset, command.count))
        return None if self.data is None else bytes(self.data[command.offset:command.offset + command.count])


def write(data: bytes) -> Callable[[Cluster], None]:
    def change(cluster: Cluster) -> None:
        cluster.data = (cluster.data or bytearray()) + data
    return change


def state(name: str) -> Callable[[Cluster], None]:
    def change(cluster: Cluster) -> None:
        cluster.job = replace(cluster.job, state=name, exit_code="1:0" if name == "FAILED" else "0:0")
    return change


def parse(pieces: list[str]) -> list[dict]:
    """The events as a client reads them (data lines joined with LF)."""
    events = []
    for piece in pieces:
        if piece.startswith(":"):
            events.append({"event": "comment"})
            continue
        fields: dict = {"data": []}
        for line in piece.rstrip("\n").split("\n"):
            key, _, value = line.partition(": ")
            if key == "data":
                fields["data"].append(value)
            else:
                fields[key] = value
        fields["data"] = "\n".join(fields["data"])
        events.append(fields)
    return events


def follow(cluster: Cluster, offset: int = 0, encoding: str = "text", bounds: Bounds = BOUNDS,
           lifetime: float = 600, why: str = "lifetime") -> list[dict]:
    want = Wanted("7", "out", offset, encoding)
    start = prepare(cluster, "alice", want)
    stream = Follow(cluster, start, bounds, cluster.now + lifetime, why, clock=cluster.clock, sleep=cluster.sleep)
    return parse(list(stream.events()))


def outputs(events: list[dict]) -> str:
    return "".join(e["data"] for e in events if e.get("event") == "output")


# -- the request's values ---------------------------------------------------------------------------------------


def test_wanted_defaults_and_last_event_id_wins():
    assert wanted("12", None, None, None, None, BOUNDS) == Wanted("12", "out", 0, "text")
    assert wanted("12_3", "err", "5", "40", "base64", BOUNDS) == Wanted("12_3", "err", 40, "base64")
    assert wanted("12+1", "out", "5", None, "text", BOUNDS).offset == 5


@pytest.mark.parametrize("jobid", ["abc", "$(id)", "-1", "1;2", "12_[1-3]", "١٢", "1\n2", "", "1" * 5000])
def test_wanted_refuses_bad_job_ids(jobid):
    with pytest.raises(errors.BadRequest, match="not the id of one job"):
        wanted(jobid, None, None, None, None, BOUNDS)


@pytest.mark.parametrize("offset", ["-1", "1.5", "٣", "1e3", " 1", "0x10", "9" * 19, "", "+1"])
def test_wanted_refuses_bad_offsets(offset):
    with pytest.raises(errors.BadRequest, match="'offset' must be a byte offset"):
        wanted("12", None, offset or "x", None, None, BOUNDS)
    with pytest.raises(errors.BadRequest, match="'Last-Event-ID' must be"):
        wanted("12", None, None, offset or "x", None, BOUNDS)


def test_wanted_refuses_huge_offsets_unknown_streams_and_encodings():
    with pytest.raises(errors.BadRequest, match="larger than"):
        wanted("12", None, str(BOUNDS.max_offset + 1), None, None, BOUNDS)
    with pytest.raises(errors.BadRequest, match="'stream' must be one of out, err"):
        wanted("12", "stdin", None, None, None, BOUNDS)
    with pytest.raises(errors.BadRequest, match="'encoding'"):
        wanted("12", None, None, None, "utf-16", BOUNDS)


# -- before the stream ------------------------------------------------------------------------------------------


def test_prepare_refuses_unknown_and_foreign_jobs_alike():
    cluster = Cluster()
    cluster.job = None
    with pytest.raises(output.JobNotFound) as unknown:
        prepare(cluster, "alice", Wanted("7", "out", 0, "text"))
    assert unknown.value.status == 404
    with pytest.raises(output.JobNotFound):
        prepare(Cluster(), "bob", Wanted("7", "out", 0, "text"))


def test_prepare_checks_the_file_and_the_offset():
    assert prepare(Cluster(data=b"abc"), "alice", Wanted("7", "out", 3, "text")).path == PATH
    assert prepare(Cluster(data=b"abc"), "alice", Wanted("7", "err", 0, "text")).path == "/home/alice/e 7.err"
    with pytest.raises(errors.BadRequest, match="past the end of the output: the file has 3 bytes"):
        prepare(Cluster(data=b"abc"), "alice", Wanted("7", "out", 4, "text"))
    with pytest.raises(errors.BadRequest, match="does not exist yet"):
        prepare(Cluster(data=None), "alice", Wanted("7", "out", 1, "text"))
    cluster = Cluster()
    cluster.job = replace(cluster.job, stdout="stdout-file-not-found")
    with pytest.raises(output.JobNotFound, match="no stdout file"):
        prepare(cluster, "alice", Wanted("7", "out", 0, "text"))


# -- the stream -------------------------------------------------------------------------------------------------


def test_follows_a_growing_file_until_the_job_ends():
    cluster = Cluster(data=b"one\n").at(2, write(b"two\n")).at(4, write(b"three\n")).at(5, state("COMPLETED"))
    events = follow(cluster)
    assert events[0]["event"] == "job" and json.loads(events[0]["data"])["state"] == "RUNNING"
    assert outputs(events) == "one\ntwo\nthree\n"
    assert [e["id"] for e in events if e.get("event") == "output"] == ["4", "8", "14"]
    assert events[-2] == {"id": "14", "event": "state", "data": json.dumps({"jobid": "7", "state": "COMPLETED"})}
    assert json.loads(events[-1]["data"]) == {"jobid": "7", "state": "COMPLETED", "exit_code": "0:0", "offset": 14}


def test_resumes_from_an_offset_without_loss_or_repeat():
    cluster = Cluster(state="COMPLETED", data=b"one\ntwo\n")
    events = follow(cluster, offset=4)
    assert outputs(events) == "two\n" and events[-1]["event"] == "end" and events[-1]["id"] == "8"


def test_output_written_after_the_last_state_check_is_read_before_the_end():
    cluster = Cluster(data=b"").at(2.9, write(b"late\n")).at(2.95, state("FAILED"))
    events = follow(cluster)
    assert outputs(events) == "late\n"
    assert json.loads(events[-1]["data"])["exit_code"] == "1:0"


def test_waits_for_a_pending_job_without_a_file():
    cluster = Cluster(state="PENDING", data=None).at(4, state("RUNNING")).at(4, write(b"hi\n"))
    cluster.at(9, state("COMPLETED"))
    events = follow(cluster)
    assert [e.get("event") for e in events if e.get("event") != "comment"] == [
        "job", "state", "output", "state", "end"]
    assert outputs(events) == "hi\n"


def test_a_job_that_ended_without_a_file_ends_the_stream():
    events = follow(Cluster(state="CANCELLED", data=None))
    assert [e["event"] for e in events] == ["job", "end"] and events[-1]["id"] == "0"


def test_a_character_split_by_a_read_waits_for_its_end():
    cluster = Cluster(data=b"x\xc3").at(1.5, write(b"\xa9\n")).at(3, state("COMPLETED"))
    events = follow(cluster)
    assert [(e["id"], e["data"]) for e in events if e.get("event") == "output"] == [("1", "x"), ("4", "é\n")]


def test_text_replaces_undecodable_bytes_at_the_end_and_base64_keeps_every_byte():
    raw = b"a\r\nb\rc\x00\xff\xc3"
    assert outputs(follow(Cluster(state="COMPLETED", data=raw))) == "a\nb\nc\x00\ufffd\ufffd"
    events = follow(Cluster(state="COMPLETED", data=raw), encoding="base64")
    assert base64.b64decode(outputs(events)) == raw and events[-1]["id"] == str(len(raw))


def test_large_output_comes_in_bounded_events_and_the_stream_stops_at_its_byte_bound():
    bounds = replace(BOUNDS, event_bytes=10, stream_bytes=25)
    events = follow(Cluster(state="COMPLETED", data=b"y" * 100), bounds=bounds)
    assert [len(e["data"]) for e in events if e.get("event") == "output"] == [10, 10, 5]
    limit = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "limit" and limit["reason"] == "bytes" and limit["offset"] == 25
    assert "Last-Event-ID: 25" in limit["description"]


def test_the_stream_ends_at_its_lifetime_or_before_the_token_expires():
    events = follow(Cluster(data=b"a"), lifetime=30)
    assert events[-1]["event"] == "limit" and json.loads(events[-1]["data"])["reason"] == "lifetime"
    assert events[-1]["id"] == "1"
    assert [e for e in events if e.get("event") == "comment"], "an idle stream sends keepalive comments"
    events = follow(Cluster(data=b"a"), lifetime=5, why="token")
    assert json.loads(events[-1]["data"])["reason"] == "token"


def test_idle_polls_slow_down():
    cluster = Cluster(data=b"a")
    follow(cluster, lifetime=60)
    assert len(cluster.reads) < 60 / BOUNDS.idle_poll_max_s + 10


def stream_of(cluster: Cluster) -> Follow:
    start = prepare(cluster, "alice", Wanted("7", "out", 0, "text"))
    return Follow(cluster, start, BOUNDS, 600, "lifetime", clock=cluster.clock, sleep=cluster.sleep)


def test_a_busy_user_skips_polls_and_failures_end_the_stream():
    cluster = Cluster(state="COMPLETED", data=b"a")
    stream = stream_of(cluster)
    cluster.busy = 20
    events = parse(list(stream.events()))
    assert outputs(events) == "a" and events[-1]["event"] == "end"
    cluster = Cluster(data=b"a")
    stream = stream_of(cluster)
    cluster.failing = 100
    events = parse(list(stream.events()))
    assert events[-1]["event"] == "error" and "failed in a row" in events[-1]["data"]
    cluster = Cluster(state="COMPLETED", data=b"a")
    stream = stream_of(cluster)
    cluster.failing = 4  # fewer than the bound: the stream goes on
    assert parse(list(stream.events()))[-1]["event"] == "end"


def test_an_unexpected_failure_ends_with_an_error_event():
    cluster = Cluster(data=b"a")
    stream = stream_of(cluster)
    cluster.run = lambda *a, **k: 1 / 0  # type: ignore[method-assign]
    events = parse(list(stream.events()))
    assert events[-1]["event"] == "error" and json.loads(events[-1]["data"])["offset"] == 0


def test_whole_utf8():
    assert whole_utf8(b"") == 0
    assert whole_utf8(b"abc") == 3
    assert whole_utf8("é".encode()) == 2
    assert whole_utf8("é".encode()[:1]) == 0
    assert whole_utf8(b"a" + "€".encode()[:2]) == 1
    assert whole_utf8(b"a" + "😀".encode()[:3]) == 1
    assert whole_utf8(b"a" + "😀".encode()) == 5
    assert whole_utf8(b"\xff\xfe") == 2  # not UTF-8 at all: replaced, never held


# -- bounds -----------------------------------------------------------------------------------------------------


def test_stream_slots_per_user_and_per_process():
    slots = StreamSlots(per_user=2, per_process=3)
    a1, a2 = slots.take("alice"), slots.take("alice")
    with pytest.raises(errors.TooManyRequests) as refused:
        slots.take("alice")
    assert refused.value.status == 429 and refused.value.headers() == {"Retry-After": "5"}
    b1 = slots.take("bob")
    with pytest.raises(errors.TooManyRequests, match="in this service process"):
        slots.take("carol")
    a1()
    a1()  # a second release changes nothing
    assert slots.open("alice") == 1 and slots.open() == 2
    slots.take("carol")
    a2()
    b1()
    assert slots.open() == 1


def test_lifetime_ends_before_the_token():
    assert output.lifetime(BOUNDS, None, 1000.0, 50.0) == (650.0, "lifetime")
    assert output.lifetime(BOUNDS, 1100, 1000.0, 50.0) == (140.0, "token")
    assert output.lifetime(BOUNDS, 99999, 1000.0, 50.0) == (650.0, "lifetime")


def test_a_stream_whose_client_left_ends_at_the_next_poll():
    cluster = Cluster(data=b"a")
    left = iter([False, True])
    start = prepare(cluster, "alice", Wanted("7", "out", 0, "text"))
    stream = Follow(cluster, start, BOUNDS, 600, "lifetime", clock=cluster.clock, sleep=cluster.sleep,
                    gone=lambda: next(left))
    assert [e["event"] for e in parse(list(stream.events()))] == ["job", "output"]


def test_peer_gone_reads_a_closed_socket():
    import socket

    ours, theirs = socket.socketpair()
    gone = output.peer_gone(ours)
    assert not gone()
    theirs.close()
    assert gone()
    ours.close()
    assert output.peer_gone(None)() is False
