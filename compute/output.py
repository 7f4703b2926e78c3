"""Live job output: a job's stdout or stderr followed as server-sent events, from a byte offset, until the job ends.

Each poll reads the new bytes with one `dd` as the caller (common/slurm/output.py); every few seconds `scontrol`
says the job's state. Once the job has finished, the file is read to its end and an `end` event closes the
stream. Events (their ids are byte offsets in the file, so `Last-Event-ID` resumes exactly):

- `job`    first, {"jobid", "stream", "state", "offset", "encoding"}
- `output` the bytes after the previous id up to this one: UTF-8 text (a character split by a read is held back
           until it is whole; undecodable bytes become U+FFFD; CR and CRLF arrive as LF, as the format joins
           lines), or with `encoding=base64` the exact bytes in base64
- `state`  the job's state changed, {"jobid", "state"}
- `limit`  a bound was reached (lifetime, bytes, token expiry): {"reason", "offset", "description"}; reconnect
- `error`  the cluster failed several polls in a row: {"description", "offset"}
- `end`    {"jobid", "state", "exit_code", "offset"}: the job has ended and its file is read to the end

A stream holds a service thread: each process bounds the streams open at once, per user and in all, and a
stream's commands take the user's command slots (common/ssh.py) only while they run (a busy user's poll is
skipped, never waited for).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from common import errors, metrics, sse
from common.commands import Command, T
from common.slurm.output import FileSize, JobView, ReadRange, ShowJob
from common.values import integer, valid_job_id

log = logging.getLogger("firecrest.compute.output")
OPERATION = "Error on job output operation"
STREAMS = ("out", "err")
ENCODINGS = ("text", "base64")


@dataclass(frozen=True)
class Bounds:
    poll_s: float = 1.0  # between reads while output flows
    idle_poll_max_s: float = 5.0  # the interval doubles up to this while nothing new comes
    catch_up_s: float = 0.1  # between full reads (a backlog)
    state_every_s: float = 3.0
    keepalive_s: float = 15.0  # a comment on an idle stream (the gateway closes silent ones at 120 s)
    event_bytes: int = 64 * 1024
    stream_bytes: int = 16 * 1024 * 1024
    lifetime_s: float = 600.0
    token_margin_s: float = 10.0  # end before the caller's token does (new connections need it)
    failures: int = 5  # polls failed in a row before the stream gives up
    streams_per_user: int = 4  # per process: at most half of the user's 8 command slots can be polling
    streams_per_process: int = 8  # of the process's 16 threads
    max_offset: int = 1 << 50
    retry_ms: int = 2000


class Runner(Protocol):
    def run(self, command: Command[T], stdin: bytes | None = None, max_output: int | None = None) -> T: ...


class JobNotFound(errors.FirecrestError):
    status = 404
    header = "X-Not-Found"


# -- the request ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    jobid: str
    stream: str
    offset: int
    encoding: str


def wanted(jobid: str, stream: str | None, offset: str | None, last_id: str | None, encoding: str | None,
           bounds: Bounds) -> Wanted:
    """The request's values, checked; `Last-Event-ID` (a reconnection) wins over `offset`."""
    if len(jobid) > 24 or not valid_job_id(jobid) or "[" in jobid:  # Slurm's ids are 32-bit numbers
        raise errors.BadRequest(f"{jobid[:64]!r} is not the id of one job (12, 12_3 or 12+1)", OPERATION)
    stream = stream or "out"
    if stream not in STREAMS:
        raise errors.BadRequest(f"'stream' must be one of {', '.join(STREAMS)}", OPERATION)
    encoding = encoding or "text"
    if encoding not in ENCODINGS:
        raise errors.BadRequest(f"'encoding' must be one of {', '.join(ENCODINGS)}", OPERATION)
    name, raw = ("Last-Event-ID", last_id) if last_id is not None else ("offset", offset or "0")
    value = integer(raw)
    if value is None:
        raise errors.BadRequest(f"'{name}' must be a byte offset (ASCII digits)", OPERATION)
    if value > bounds.max_offset:
        raise errors.BadRequest(f"'{name}' is larger than {bounds.max_offset}", OPERATION)
    return Wanted(jobid, stream, value, encoding)


# -- the bound on open streams ----------------------------------------------------------------------------------


class StreamSlots:
    """Streams open at once in this process, per user and in all; one more is refused with 429 at once."""

    def __init__(self, per_user: int, per_process: int) -> None:
        self.per_user, self.per_process = per_user, per_process
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def take(self, user: str) -> Callable[[], None]:
        """Take a slot; returns its release (safe to call more than once)."""
        with self._lock:
            if sum(self._held.values()) >= self.per_process:
                raise errors.TooManyRequests(
                    f"{self.per_process} output streams are open in this service process, the most allowed",
                    "Too many output streams", retry_after_s=5)
            if self._held.get(user, 0) >= self.per_user:
                raise errors.TooManyRequests(
                    f"{self.per_user} of your output streams are open at once, the most allowed: close one first",
                    "Too many output streams", retry_after_s=5)
            self._held[user] = self._held.get(user, 0) + 1
        metrics.stream_opened("job_output")
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                metrics.stream_closed("job_output")
                self._held[user] -= 1
                if not self._held[user]:
                    del self._held[user]

        return release

    def open(self, user: str | None = None) -> int:
        with self._lock:
            return self._held.get(user, 0) if user else sum(self._held.values())


# -- before the stream: the job, its file, the offset -----------------------------------------------------------


@dataclass(frozen=True)
class Start:
    wanted: Wanted
    job: JobView
    path: str


def prepare(runner: Runner, user: str, want: Wanted) -> Start:
    """Everything that can fail as a plain HTTP answer, before the stream begins."""
    job = runner.run(ShowJob(want.jobid))
    if job is None or job.user != user:
        raise JobNotFound(f"Job {want.jobid} not found: not a job of yours that Slurm still holds (a finished job is"
                          " kept for a few minutes)", OPERATION)
    path = job.stdout if want.stream == "out" else job.stderr
    if not path.startswith("/"):
        raise JobNotFound(f"Job {want.jobid} has no std{want.stream} file", OPERATION)
    size = runner.run(FileSize(path))
    if want.offset > (size or 0):
        where = f"the file has {size} bytes" if size is not None else "the file does not exist yet"
        raise errors.BadRequest(f"Offset {want.offset} is past the end of the output: {where}", OPERATION)
    return Start(want, job, path)


# -- the stream -------------------------------------------------------------------------------------------------


def whole_utf8(data: bytes) -> int:
    """How much of `data` ends on a whole UTF-8 character (a read may split one: its head waits for the rest)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for its lead
            continue
        need = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
        return len(data) - back if need > back else len(data)
    return len(data)


def _json(**fields: Any) -> str:
    return json.dumps(fields)


class Follow:
    """One stream's state; `events()` is the generator the response sends."""

    def __init__(self, runner: Runner, start: Start, bounds: Bounds, ends_at: float, ended_by: str,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 gone: Callable[[], bool] = lambda: False) -> None:
        self.runner, self.start, self.bounds, self.gone = runner, start, bounds, gone
        self.want, self.job = start.wanted, start.job
        self.offset, self.sent = start.wanted.offset, 0
        self.ends_at, self.ended_by = ends_at, ended_by  # "lifetime" or "token"
        self.clock, self.sleep = clock, sleep
        self.failures = 0

    def _event(self, name: str, data: str) -> str:
        return sse.event(data, id=str(self.offset), name=name)

    def _limit(self, reason: str, why: str) -> str:
        return self._event("limit", _json(reason=reason, offset=self.offset, description=(
            f"{why}: reconnect with Last-Event-ID: {self.offset} (or offset={self.offset}) to go on")))

    def _try(self, command: Command[T]) -> tuple[bool, T | None]:
        """Run a poll's command; (False, None) when it failed (counted) or the user's slots were all busy."""
        try:
            value = self.runner.run(command, max_output=1 << 20)
        except errors.TooManyRequests:
            return False, None  # the user's own requests come first: skip this poll
        except errors.FirecrestError as e:
            self.failures += 1
            log.info("job %s output: %s failed (%s, %d in a row)", self.want.jobid, command.name, e.error,
                     self.failures)
            return False, None
        self.failures = 0
        return True, value

    def _state(self) -> tuple[str | None, bool]:
        """A `state` event if the job's state changed; whether the job has ended (or is no longer held)."""
        ok, job = self._try(ShowJob(self.want.jobid))
        if not ok:
            return None, False
        if job is None:  # forgotten by slurmctld (MinJobAge): it ended long ago; its last state stands
            return None, True
        changed = job.state != self.job.state
        self.job = job
        return (self._event("state", _json(jobid=self.want.jobid, state=job.state)) if changed else None), job.finished

    def _chunk(self, data: bytes, ending: bool) -> str | None:
        """The `output` event of a read (the offset moves past what it carries)."""
        if self.want.encoding == "base64":
            text, used = base64.b64encode(data).decode(), len(data)
        else:
            used = len(data) if ending else whole_utf8(data)
            text = data[:used].decode("utf-8", errors="replace")
        if not used:
            return None
        self.offset += used
        self.sent += used
        return self._event("output", text)

    def events(self) -> Iterator[str]:
        try:
            yield from self._events()
        except Exception:  # never a broken stream without a word: the client learns where to resume
            log.exception("job %s output stream failed", self.want.jobid)
            yield self._event("error", _json(description="Internal error", offset=self.offset))

    def _events(self) -> Iterator[str]:
        b = self.bounds
        yield sse.event(_json(jobid=self.want.jobid, stream=self.want.stream, state=self.job.state,
                              offset=self.offset, encoding=self.want.encoding),
                        id=str(self.offset), name="job", retry_ms=b.retry_ms)
        ending = self.job.finished
        wait, next_state, last_sent = b.poll_s, self.clock() + b.state_every_s, self.clock()
        while True:
            if self.gone():  # the client left: free the thread now, not at the next write
                return
            if self.clock() >= self.ends_at:
                yield self._limit(self.ended_by, "The stream reached its " + (
                    "longest lifetime" if self.ended_by == "lifetime" else "end: your token expires soon"))
                return
            if self.sent >= b.stream_bytes:
                yield self._limit("bytes", f"The stream sent {b.stream_bytes} bytes, the most one stream sends")
                return
            if not ending and self.clock() >= next_state:
                change, ending = self._state()
                next_state = self.clock() + b.state_every_s
                if change:
                    yield change
                    last_sent = self.clock()
            want = min(b.event_bytes, b.stream_bytes - self.sent)
            ok, data = self._try(ReadRange(self.start.path, self.offset, want))
            if self.failures >= b.failures:
                yield self._event("error", _json(offset=self.offset, description=(
                    f"{self.failures} commands on the cluster failed in a row: reconnect later from this offset")))
                return
            piece = self._chunk(data, ending) if data else None
            if piece:
                yield piece
                last_sent = self.clock()
            if ok and data is not None and len(data) == want:
                wait = b.catch_up_s  # more is waiting
            elif ok and ending:
                yield self._event("end", _json(jobid=self.want.jobid, state=self.job.state,
                                               exit_code=self.job.exit_code, offset=self.offset))
                return
            else:
                wait = b.poll_s if piece else min(wait * 2, b.idle_poll_max_s)
            if self.clock() - last_sent >= b.keepalive_s:
                yield sse.comment("waiting")
                last_sent = self.clock()
            self.sleep(max(0.0, min(wait, self.ends_at - self.clock())))


def lifetime(bounds: Bounds, token_exp: Any, now_wall: float, now: float) -> tuple[float, str]:
    """When the stream must end (monotonic) and why: its own bound, or shortly before the caller's token expires
    (a new SSH connection needs a valid token for its certificate)."""
    ends_at, why = now + bounds.lifetime_s, "lifetime"
    if isinstance(token_exp, (int, float)):
        by_token = now + (token_exp - now_wall) - bounds.token_margin_s
        if by_token < ends_at:
            ends_at, why = by_token, "token"
    return ends_at, why


def peer_gone(sock: Any) -> Callable[[], bool]:
    """Whether the client closed its connection (`sock`: the server's socket of the request, if the server gives
    it): a closed peer reads as end of file at once, while a live one has nothing to read."""
    def gone() -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except ConnectionError:
            return True
        except (OSError, ValueError):  # a TLS socket takes no flags: the next write will tell
            return False
    return gone if isinstance(sock, socket.socket) else (lambda: False)
