"""One open event stream: where it starts (the current state, or on from `Last-Event-ID`), what it follows in
Redis, and when it ends. Nothing here knows about requests; the routes (events_routes.py) build a `Stream`.

Bounds: a comment every HEARTBEAT_S keeps the connection open through the gateway (whose server timeout is
120 s); the stream ends after `idle_s` without an event, and when the token it was opened with expires (a
stream never outlives its authorization: the client reconnects with a fresh token and `Last-Event-ID`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from common import sse

from .events import EventStore, Selector

HEARTBEAT_S = 15.0
BEAT_EVERY_S = 10.0  # leases (the stream's slot, the job poll's listeners) renewed this often, at most
RETRY_MS = 2000


@dataclass
class Stream:
    store: EventStore
    key: str  # the Redis stream
    name: str  # the event name of its entries: task | job
    wanted: Selector  # which entries this client asked for
    current: Callable[[], list[str]]  # the current state, as event data, for a fresh start
    idle_s: float
    ends_at: float  # wall-clock time the token expires
    beat: Callable[[], None]  # renew what the open stream holds

    def pieces(self, last_id: str | None) -> Iterator[str]:
        yield sse.retry(RETRY_MS)
        after = last_id
        if after is None or not self.store.resumable(self.key, after):
            if after is not None:
                yield sse.event(json.dumps({
                    "description": "Events after the given Last-Event-ID are no longer kept; the current state "
                                   "follows", "last_event_id": after}), name="reset")
            after = self.store.tail(self.key)  # before reading the state: a change after it is sent after it
            for data in self.current():
                yield sse.event(data, id=after, name=self.name)
        yield from self.follow(after)

    def follow(self, after: str) -> Iterator[str]:
        last_event = last_write = last_beat = time.monotonic()
        while True:
            now = time.monotonic()
            if time.time() >= self.ends_at:
                yield self.end("token-expired", "The token this stream was opened with expired; reconnect with "
                                                "a fresh one and Last-Event-ID")
                return
            if now - last_event >= self.idle_s:
                yield self.end("idle", f"No event for {self.idle_s:g} s; reconnect with Last-Event-ID")
                return
            wait = min(HEARTBEAT_S - (now - last_write), self.idle_s - (now - last_event),
                       self.ends_at - time.time())
            entries = self.store.read(self.key, after, max(wait, 0.05))
            for entry_id, data in entries:
                after = entry_id
                if self._wanted(data):
                    yield sse.event(data, id=entry_id, name=self.name)
                    last_event = last_write = time.monotonic()
            if time.monotonic() - last_write >= HEARTBEAT_S - 0.5:
                yield sse.comment("keep-alive")
                last_write = time.monotonic()
            if time.monotonic() - last_beat >= BEAT_EVERY_S:
                self.beat()
                last_beat = time.monotonic()

    def _wanted(self, data: str) -> bool:
        try:
            value = json.loads(data)
        except ValueError:
            return False
        return isinstance(value, dict) and self.wanted(value)

    def end(self, reason: str, description: str) -> str:
        return sse.event(json.dumps({"reason": reason, "description": description}), name="end")
