"""Idempotent submission: the one decorator every POST that creates work wears (compute's submissions, storage's
transfers), with the semantics of the DOE IRI Facility API.

Without an `Idempotency-Key` header the route runs as always. With one (1 to 255 visible ASCII characters, else
400), the request's fingerprint (sha256 over service, method, path, X-Machine-Name, query, form fields and file
contents) is reserved under the caller's key in the task store (the tasks service; only it talks to Redis):
  * first time: the route runs; a reply below 400 is recorded and sent with `Idempotency-Key-Reply: miss`;
    an error reply (4xx/5xx, or an exception) releases the key, so the client may retry, with the same key, a
    request it fixed (nothing was created: a route only fails before it starts work);
  * same key, same request, reply recorded: that reply again (status, body, task id), `Idempotency-Key-Reply: hit`;
  * same key, another request: 422; same key while the first is still processed: 409 with `Retry-After`.
Keys are per user and live 24 h after the first reply (tasks/idempotency.py); a reservation whose process died
frees itself after 5 minutes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response, current_app, request

from .app import identity, site
from .errors import BadRequest, FirecrestError
from .tasks_client import TasksClient

HEADER = "Idempotency-Key"
REPLY_HEADER = "Idempotency-Key-Reply"
KEY = re.compile(r"[\x21-\x7e]{1,255}")
REPLAYED = ("Content-Type", "Location")  # what a recorded reply keeps besides status and body
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
CLIENT = "firecrest.idempotency"
CHUNK = 1 << 20
log = logging.getLogger("firecrest.idempotency")
View = TypeVar("View", bound=Callable[..., Any])


class KeyInFlight(FirecrestError):
    """A duplicate arrived while the first request with its key is still processed."""

    status = 409

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed; retry after a moment",
                         "Idempotency-Key in use")
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class KeyReused(FirecrestError):
    status = 422

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was first used with another request (method, path, X-Machine-Name, "
                         "query, form fields or file content differ); send a new key for a new request",
                         "Idempotency-Key reused with another request")


def key() -> str | None:
    """The request's key, None without the header; a malformed one is 400 (nothing is done)."""
    given = request.headers.getlist(HEADER)
    if not given:
        return None
    if len(given) > 1 or not KEY.fullmatch(given[0]):
        raise BadRequest(f"'{HEADER}' must be one value of 1 to 255 visible ASCII characters (no spaces)",
                         f"Invalid {HEADER}")
    return given[0]


def fingerprint(service: str) -> str:
    """sha256 over the request as it matters to the route, each part length-prefixed (no two requests collide by
    moving text between fields); multipart boundaries and field order do not count."""
    digest = hashlib.sha256()

    def part(*items: str | bytes) -> None:
        for item in items:
            data = item.encode() if isinstance(item, str) else item
            digest.update(len(data).to_bytes(8, "big") + data)

    part(service, request.method, request.path, request.headers.get("X-Machine-Name", ""))
    for name, value in sorted(request.args.items(multi=True)):
        part("arg", name, value)
    if request.mimetype in FORMS:
        for name, value in sorted(request.form.items(multi=True)):
            part("form", name, value)
        for name, file in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            part("file", name, file.filename or "", _content_digest(file.stream))
    else:
        part("body", request.get_data(cache=True))
    return digest.hexdigest()


def _content_digest(stream: Any) -> bytes:
    """The file's sha256, leaving the stream at its start for the route."""
    digest = hashlib.sha256()
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    stream.seek(0)
    return digest.digest()


def tasks() -> TasksClient:
    client = current_app.extensions.get(CLIENT)
    if client is None:
        client = current_app.extensions[CLIENT] = TasksClient.of(site())
    return client


def idempotent(view: View) -> View:
    """Wrap a route that creates work (see the module's text)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        name = key()
        if name is None:
            return current_app.make_response(view(*args, **kwargs))
        token = identity().token
        found = tasks().reserve_key(token, name, fingerprint(current_app.name))
        state = found.get("state")
        if state == "hit":
            return replay(found["reply"])
        if state == "in_flight":
            raise KeyInFlight(int(found.get("retry_after") or 1))
        if state != "new":
            raise KeyReused()
        nonce = str(found["nonce"])
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            _release(token, name, nonce)
            raise
        if response.status_code >= 400:
            _release(token, name, nonce)
            return response
        _record(token, name, nonce, response)
        response.headers[REPLY_HEADER] = "miss"
        return response

    return cast(View, wrapper)


def replay(recorded: dict[str, Any]) -> Response:
    response = Response(recorded["body"], status=recorded["status"], headers=recorded.get("headers") or {})
    response.headers[REPLY_HEADER] = "hit"
    return response


def _record(token: str, name: str, nonce: str, response: Response) -> None:
    recorded = {"status": response.status_code, "body": response.get_data(as_text=True),
                "headers": {h: response.headers[h] for h in REPLAYED if h in response.headers}}
    try:
        if not tasks().complete_key(token, name, nonce, recorded):
            log.warning("idempotency key's reservation ran out before its reply was recorded")
    except FirecrestError as e:
        # The work is done and the client gets its reply; a retry after the reservation's lease may redo it.
        log.warning("idempotency reply not recorded: %s", e.error)


def _release(token: str, name: str, nonce: str) -> None:
    try:
        tasks().release_key(token, name, nonce)
    except FirecrestError as e:  # the reservation then frees itself when its lease runs out
        log.warning("idempotency key not released: %s", e.error)
