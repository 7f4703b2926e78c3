"""Typed errors and the one place that turns them into HTTP: status, contract `X-*` header and JSON body.

Bodies follow the FirecREST v1 contract: {"description": what failed, "error": the detail}. Clients such as
pyfirecrest only test whether an `X-*` header is present, so each error kind carries its header.
"""

from __future__ import annotations

from typing import Any

TIMEOUT_TEXT = "Command has finished with timeout signal"  # pyfirecrest compares against this exact text


class FirecrestError(Exception):
    status = 400
    header: str | None = None

    def __init__(self, error: str, description: str | None = None, header_value: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.header_value = header_value or error

    def with_description(self, description: str) -> FirecrestError:
        if self.description is None:
            self.description = description
        return self

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"description": self.description or self.error}
        if self.description and self.error != self.description:
            body["error"] = self.error
        return body

    def headers(self) -> dict[str, str]:
        # Header values must be one line of latin-1; the JSON body keeps the full text.
        if not self.header:
            return {}
        value = " ".join(self.header_value.split())[:512].encode("latin-1", "replace").decode("latin-1")
        return {self.header: value}


class BadRequest(FirecrestError):
    """A user mistake in the request itself (missing or invalid parameter)."""


class Unauthorized(FirecrestError):
    status = 401


class Forbidden(FirecrestError):
    status = 403


class NotFoundRoute(FirecrestError):
    status = 404


class MissingMachine(BadRequest):
    def __init__(self) -> None:
        super().__init__("No machine name given")


class UnknownMachine(FirecrestError):
    header = "X-Machine-Does-Not-Exist"

    def __init__(self, name: str) -> None:
        super().__init__("Machine does not exist", header_value="Machine does not exist")
        self.machine = name


class UnknownMachineCompute(UnknownMachine):
    """Compute and storage spell the contract's header with an extra s; pyfirecrest only knows the utilities
    spelling, so both are sent."""

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "X-Machine-Does-Not-Exists": "Machine does not exists"}


class MachineNotAvailable(FirecrestError):
    """The login node cannot be reached or refuses us: a server-side condition, hence 503."""

    status = 503
    header = "X-Machine-Not-Available"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Machine is not available: {detail}", header_value="Machine is not available")


class CertificateError(FirecrestError):
    """The certificator refused or failed; its status is kept (401 for a bad token, 5xx when it is down)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.status = status


class PermissionDenied(FirecrestError):
    header = "X-Permission-Denied"


class InvalidPath(FirecrestError):
    header = "X-Invalid-Path"


class NotFound(FirecrestError):
    header = "X-Not-Found"


class Exists(FirecrestError):
    header = "X-Exists"


class NotADirectory(FirecrestError):
    header = "X-Not-A-Directory"


class ADirectory(FirecrestError):
    header = "X-A-Directory"


class InvalidMode(FirecrestError):
    header = "X-Invalid-Mode"


class InvalidOwner(FirecrestError):
    header = "X-Invalid-Owner"


class InvalidGroup(FirecrestError):
    header = "X-Invalid-Group"


class Timeout(FirecrestError):
    header = "X-Timeout"

    def __init__(self) -> None:
        super().__init__(TIMEOUT_TEXT)


class SizeLimit(FirecrestError):
    header = "X-Size-Limit"


class CommandNotAllowed(FirecrestError):
    header = "X-Error"

    def __init__(self) -> None:
        super().__init__("Command execution is not allowed in machine")


class RemoteError(FirecrestError):
    header = "X-Error"


class NotText(FirecrestError):
    """Content that must be returned as text is not UTF-8: refused, never altered (the contract has no closer
    header than its generic one)."""

    header = "X-Error"


class TooManyRequests(FirecrestError):
    """A per-user bound is reached: nothing was done, the client may retry after `retry_after_s` (pyfirecrest
    does, reading Retry-After)."""

    status = 429

    def __init__(self, error: str, description: str, retry_after_s: int = 1) -> None:
        super().__init__(error, description)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def to_response(err: FirecrestError) -> tuple[dict[str, Any], int, dict[str, str]]:
    return err.body(), err.status, err.headers()


class Unavailable(FirecrestError):
    """A backing service (task store, tasks service) is down: the request can be retried, nothing was done."""

    status = 503
