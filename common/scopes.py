"""What a token's application may do here, checked in every service again after the gateway (kong/applications.py
reads the same keys of the site file): a token issued to an application the site did not register is refused, and
a request needs the scope its service names for its kind: `read` for GET and HEAD, `change` for every other method.
A scope the site names for no service is never required; a service without `change` (tasks: its changes are
internal, behind the services' credential) requires nothing for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import AuthConfig
from .errors import Forbidden

READ_METHODS = frozenset({"GET", "HEAD"})
NOT_REGISTERED = "The token was issued to an application that is not registered at this site"


def missing_scope(scope: str) -> str:
    return f"This request needs the scope {scope}, which the application this token was issued to was not granted"


def check_application(config: AuthConfig, claims: Mapping[str, Any]) -> None:
    azp = claims.get("azp")
    if config.applications is not None and not (isinstance(azp, str) and azp in config.applications):
        raise Forbidden(NOT_REGISTERED)


def check_scope(config: AuthConfig, service: str, method: str, claims: Mapping[str, Any]) -> None:
    needed = config.scopes.get(service, {}).get("read" if method in READ_METHODS else "change")
    granted = claims.get("scope")
    if needed and needed not in (granted.split() if isinstance(granted, str) else ()):
        raise Forbidden(missing_scope(needed))
