"""Relay of the API's event streams to the browser (text/event-stream in, text/event-stream out).

A browser's EventSource cannot send the Authorization header, so the portal opens the stream on the gateway with
the session's token and passes its bytes on unchanged. The API allows 8 event streams per user: the upstream is
closed as soon as the browser goes away (the next write to it fails, at the latest at the API's next keep-alive,
which comes at least every 15 s) or the relay ends for any other reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import requests
from flask import Response, request, stream_with_context

from . import oidc
from .api import ApiError

CHUNK = 4096
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
    """The upstream's bytes as they come; the upstream is closed however this generator ends (the browser left:
    the WSGI server closes the generator after a failed write)."""
    try:
        yield from upstream.raw.stream(CHUNK, decode_content=True)
    except (requests.RequestException, OSError, ValueError):
        yield event("apierror", {"status": 502, "description": "the API's stream broke off", "retry_after": None})
    finally:
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
