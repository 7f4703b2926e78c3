"""Relay of the API's event streams to the browser (text/event-stream in, text/event-stream out).

A browser's EventSource cannot send the Authorization header, so the portal opens the stream on the gateway with
the session's token and passes its bytes on unchanged. The API allows 8 event streams per user: the upstream is
closed as soon as the browser goes away or the relay ends for any other reason. A thread reads the upstream, so
that the relay can write a comment to the browser every few seconds while the API is quiet: a browser that left
is noticed at the next failed write (not only at the API's own keep-alive, every 15 s), and the blocked read is
then cut off (urllib3's shutdown) and the connection closed, which the API sees at its next write.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests
from flask import Response, request, stream_with_context

from . import oidc
from .api import ApiError

CHUNK = 4096
PING_S = 5.0  # seconds without a byte from the API before the relay writes a comment to the browser
PING = b": relay\n\n"
QUEUED = 64  # chunks read ahead of a slow browser
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str, data: Any) -> bytes:
    """One server-sent event whose data is `data` as JSON (one line: JSON never holds a raw newline)."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def api_error_event(e: ApiError) -> bytes:
    """An API refusal as an event the page shows: an EventSource sees no status code or body of a non-200
    answer (it only fails), so the relay answers 200 with this one event and the page closes the stream."""
    return event("apierror", {"status": e.status, "description": e.description, "retry_after": e.retry_after})


def last_event_id() -> str | None:
    """The id the browser's EventSource sends when it reconnects; the API takes it as `lastEventId` too."""
    value = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    return value.strip() if value and value.strip() else None


def pieces(upstream: requests.Response) -> Iterator[bytes]:
    """The upstream's bytes as they come, a comment when it has been quiet for PING_S; the upstream is closed
    however this generator ends (the browser left: the WSGI server closes the generator after a failed write)."""
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED)
    stop = threading.Event()
    reader = threading.Thread(target=_read, args=(upstream, chunks, stop), name="sse-relay", daemon=True)
    reader.start()
    try:
        while True:
            try:
                chunk = chunks.get(timeout=PING_S)
            except queue.Empty:
                yield PING
                continue
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        _hang_up(upstream)


def _read(upstream: requests.Response, chunks: queue.Queue[bytes | None], stop: threading.Event) -> None:
    """Move the upstream's chunks to the queue until it ends, fails, or the relay stops (never blocks for good
    on a full queue nobody reads any more)."""
    def put(item: bytes | None) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=1.0)
                return True
            except queue.Full:
                continue
        return False

    try:
        for chunk in upstream.raw.stream(CHUNK, decode_content=True):
            if not put(chunk):
                return
    except Exception:  # cut off by _hang_up, or the API's connection broke (then the page is told)
        if not stop.is_set():
            put(event("apierror", {"status": 502, "description": "the API's stream broke off", "retry_after": None}))
    finally:
        put(None)


def _hang_up(upstream: requests.Response) -> None:
    with contextlib.suppress(ValueError, RuntimeError, OSError):  # already released or closed: nothing blocks
        upstream.raw.shutdown()  # wakes the reader blocked in recv
    upstream.close()


def relay(open_upstream: Callable[[], requests.Response]) -> Response:
    """Open the upstream now (a refusal becomes one `apierror` event) and stream it to the browser."""
    try:
        upstream = open_upstream()
    except ApiError as e:
        return Response(api_error_event(e), mimetype="text/event-stream", headers=HEADERS)
    except oidc.SignInRequired:
        ended = ApiError(401, "your sign-in has ended: sign in again")
        return Response(api_error_event(ended), mimetype="text/event-stream", headers=HEADERS)
    return Response(stream_with_context(pieces(upstream)), mimetype="text/event-stream", headers=HEADERS)
