"""Server-sent events (text/event-stream): the one place that writes the format and reads `Last-Event-ID`.

A stream is a generator of already formatted pieces; `response` wraps it so that nothing between the service and
the client (gunicorn, the gateway) buffers it, and so that a stream a client left is closed at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from flask import Response, request, stream_with_context

LINE_BREAK = re.compile(r"\r\n|\r|\n")
EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def event(data: str, *, id: str | None = None, name: str | None = None, retry_ms: int | None = None) -> str:
    """One event; `data` may hold line breaks (each line its own `data:` field, as the format wants)."""
    fields = []
    if id is not None:
        fields.append(f"id: {id}")
    if name is not None:
        fields.append(f"event: {name}")
    if retry_ms is not None:
        fields.append(f"retry: {retry_ms}")
    fields.extend(f"data: {line}" for line in LINE_BREAK.split(data))
    return "\n".join(fields) + "\n\n"


def comment(text: str = "") -> str:
    """A comment line: keeps an idle stream open through proxies (the gateway's server timeout)."""
    return f": {text}\n\n"


def retry(ms: int) -> str:
    """How long a client waits before reconnecting after the stream ends (a field with no event)."""
    return f"retry: {int(ms)}\n\n"


def last_event_id(default: str | None = None) -> str | None:
    """The `Last-Event-ID` header a reconnecting client sends (or the `lastEventId` parameter, for clients that
    cannot set headers); None when absent. Its syntax is the caller's to check."""
    value = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    return value.strip() if value and value.strip() else default


def response(pieces: Iterable[str], on_close: Callable[[], None] | None = None) -> Response:
    """The stream as a response; `on_close` runs when it ends for any reason (the client left, the generator
    ended or failed), even if it never started: what the stream holds (a slot, a lease) is always given back."""
    def encoded() -> Iterator[bytes]:
        for piece in pieces:
            yield piece.encode()

    reply = Response(stream_with_context(encoded()), status=200, mimetype="text/event-stream",
                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    if on_close is not None:
        reply.call_on_close(on_close)
    return reply
