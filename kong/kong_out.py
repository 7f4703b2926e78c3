"""kong.yml as a real Kong gets it (`render.py --kong-out`): the same site as the HAProxy rendering of the same call.

The placeholders are filled by render.py; here each service's `url` becomes the site's upstream (kong.yml's own URLs
are examples), a service without one answers 503 {"description":"Service not deployed"} as its HAProxy backend
does, and the services' timeouts are the local gateway's (Kong's defaults, 60 s, would cut a long upload that
HAProxy's `timeout server` lets through).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kong.errors import RenderError
from kong.haproxy_text import NOT_DEPLOYED

HAPROXY_TIME = re.compile(r"^([0-9]+)(us|ms|s|m|h|d)?$")
MILLISECONDS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def milliseconds(value: str) -> int:
    """An HAProxy time ("5s", "120s", "500", "2m") in milliseconds, as Kong's service timeouts take it."""
    m = HAPROXY_TIME.match(str(value))
    if not m:
        raise RenderError(f"timeout {value!r} is not an HAProxy time")
    return max(1, round(int(m.group(1)) * MILLISECONDS[m.group(2) or "ms"]))


def service_timeouts(timeouts: dict[str, Any]) -> dict[str, int]:
    """Kong's per-service timeouts from the local gateway's HAProxy ones (only those both have)."""
    out = {}
    if "connect" in timeouts:
        out["connect_timeout"] = milliseconds(timeouts["connect"])
    if "server" in timeouts:
        out["read_timeout"] = out["write_timeout"] = milliseconds(timeouts["server"])
    return out


def for_kong(filled: dict[str, Any], upstreams: dict[str, str], timeouts: dict[str, Any]) -> dict[str, Any]:
    """A copy of the filled kong.yml pointed at `upstreams` (name -> http URL), for Kong's declarative config."""
    config = copy.deepcopy(filled)
    for service in config.get("services") or []:
        service.update(service_timeouts(timeouts))
        if upstreams.get(service["name"]):
            service["url"] = upstreams[service["name"]]
            continue
        # Route plugins win over service plugins in Kong, so the services' own termination routes still answer.
        service["plugins"] = [*(service.get("plugins") or []), {"name": "request-termination", "config": {
            "status_code": 503, "content_type": "application/json", "body": NOT_DEPLOYED}}]
    return config
