"""Registered applications and the scope each service's requests need, read from the site file (`auth.applications`,
`auth.scopes`): the services enforce the same keys again (common/config.py, common/scopes.py).

    applications: [client, ...]                      the clients (a token's `azp`) the site accepts
    scopes: {service: {read: scope, change: scope}}  `read` for GET and HEAD, `change` for every other method
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kong.errors import RenderError

# Client ids and scope names end up in HAProxy ACLs and in a Lua long string: nothing that could end either.
NAME = re.compile(r"[A-Za-z0-9._:-]{1,128}")
KINDS = ("read", "change")
READ_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class Applications:
    clients: tuple[str, ...]
    scopes: dict[str, dict[str, str]]  # service -> kind -> scope

    def placeholders(self) -> dict[str, str]:
        """kong.yml's pre-function reads both as JSON."""
        return {"FIRECREST_APPLICATIONS": json.dumps(dict.fromkeys(self.clients, True), separators=(",", ":")),
                "FIRECREST_SCOPES": json.dumps(self.scopes, separators=(",", ":"))}


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise RenderError(f"site file: {what} {value!r} is not a name of letters, digits, '.', ':', '_' or '-'")
    return value


def parse(auth: dict[str, Any]) -> Applications:
    clients = auth.get("applications")
    if not isinstance(clients, list) or not clients:
        raise RenderError("site file: auth.applications must list the registered applications (client ids)")
    scopes = auth.get("scopes") or {}
    if not isinstance(scopes, dict):
        raise RenderError("site file: auth.scopes must map services to {read: scope, change: scope}")
    parsed: dict[str, dict[str, str]] = {}
    for service, kinds in scopes.items():
        if not isinstance(kinds, dict) or set(kinds) - set(KINDS):
            raise RenderError(f"site file: auth.scopes.{service} takes only {' and '.join(KINDS)}")
        parsed[_name(service, "service")] = {k: _name(v, "scope") for k, v in kinds.items()}
    return Applications(tuple(_name(c, "application") for c in clients), parsed)


def from_site(path: Path) -> Applications:
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict) or not isinstance(raw.get("auth"), dict):
        raise RenderError(f"{path}: no auth section")
    return parse(raw["auth"])
