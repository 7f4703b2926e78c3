"""The portal's client of the public API: the signed-in user's token, the gateway's URL, errors as ApiError."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import requests

TIMEOUT = 60.0  # seconds; utilities' own command timeout is shorter, so the API answers first
# The API's X-* error headers (docs/openapi.yaml), said in words for the page.
HEADER_MEANINGS = {
    "X-Machine-Does-Not-Exist": "the system does not exist",
    "X-Machine-Does-Not-Exists": "the system does not exist",
    "X-Machine-Not-Available": "the system is not available",
    "X-Permission-Denied": "permission denied",
    "X-Invalid-Path": "the path is invalid or does not exist",
    "X-Not-Found": "not found",
    "X-Exists": "it already exists",
    "X-Not-A-Directory": "not a directory",
    "X-A-Directory": "it is a directory",
    "X-Timeout": "the command timed out",
    "X-Size-Limit": "the file is larger than the limit",
    "X-Invalid-Mode": "invalid mode",
    "X-Invalid-Owner": "invalid owner",
    "X-Invalid-Group": "invalid group",
    "X-Error": "the command failed",
    "X-Sbatch-Error": "the job submission failed",
}


class ApiError(Exception):
    """An answer >= 400 from the API (or no answer at all: status 502), with what the API said about it."""

    def __init__(self, status: int, description: str, retry_after: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def details(self) -> list[tuple[str, str, str]]:
        """(header, value, meaning) for each X-* error header the API sent."""
        return [(h, v, HEADER_MEANINGS[h]) for h, v in self.headers.items() if h in HEADER_MEANINGS]

    @classmethod
    def from_response(cls, r: requests.Response) -> ApiError:
        description = ""
        try:
            body = r.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            parts = [str(body[k]) for k in ("description", "error", "message") if body.get(k)]
            description = ": ".join(dict.fromkeys(parts))
        if not description:
            description = r.reason or f"HTTP {r.status_code}"
        headers = {k: v for k, v in r.headers.items() if k.lower().startswith("x-") or k.lower() == "retry-after"}
        # requests' headers are case-insensitive; keep the catalogue's spelling for the lookup above
        canonical = {h.lower(): h for h in HEADER_MEANINGS}
        headers = {canonical.get(k.lower(), k): v for k, v in headers.items()}
        return cls(r.status_code, description, r.headers.get("Retry-After"), headers)


class Api:
    """Calls to the gateway with a bearer token; every answer >= 400 raises ApiError."""

    def __init__(self, base_url: str, token: Callable[[], str], session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = session or requests.Session()

    def _call(self, method: str, path: str, machine: str | None, extra: Mapping[str, str] | None = None,
              **kwargs: Any) -> requests.Response:
        if machine is not None and not machine.isprintable():  # a header value: no CR, LF or other controls
            raise ApiError(400, "the system name holds control characters")
        headers = {**(extra or {}), "Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        if machine:
            headers["X-Machine-Name"] = machine
        try:
            r = self._http.request(method, self.base_url + path, headers=headers,
                                   timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)
        except requests.RequestException as e:
            raise ApiError(502, f"the API did not answer ({type(e).__name__})") from e
        if r.status_code >= 400:
            raise ApiError.from_response(r)
        return r

    def get(self, path: str, params: Mapping[str, Any] | None = None, machine: str | None = None) -> requests.Response:
        return self._call("GET", path, machine, params=params)

    def post(self, path: str, data: Mapping[str, Any] | None = None, files: Any = None,
             machine: str | None = None, headers: Mapping[str, str] | None = None) -> requests.Response:
        """`headers`: the few the API reads besides the system (X-Task-Id); never the Authorization."""
        return self._call("POST", path, machine, headers, data=data, files=files)

    def put(self, path: str, data: Mapping[str, Any] | None = None, files: Any = None,
            machine: str | None = None) -> requests.Response:
        return self._call("PUT", path, machine, data=data, files=files)

    def delete(self, path: str, data: Mapping[str, Any] | None = None, machine: str | None = None) -> requests.Response:
        return self._call("DELETE", path, machine, data=data)

    def stream(self, path: str, params: Mapping[str, Any] | None = None,
               machine: str | None = None) -> requests.Response:
        """An open streaming answer (SSE relay): the caller iterates and closes it. No read timeout."""
        return self._call("GET", path, machine, params=params, stream=True, timeout=(10.0, None))


def gateway_url() -> str:
    return os.environ.get("FIRECREST_URL", "http://127.0.0.1:8000")


def api() -> Api:
    """The signed-in user's client (inside a request); the token is refreshed when it is about to expire."""
    from . import auth  # auth imports nothing of this module's users; late import keeps the module graph flat

    return Api(gateway_url(), auth.access_token)
