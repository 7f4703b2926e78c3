"""Both outputs of one `render.py --out --kong-out` call, read back for tests/unit/test_kong_parity.py (no site needed).

HAProxy's side: its routes (name, Kong path, methods), the paths it strips, what each route ends in (a service's
address or a termination) and its answers; Kong's side: the filled kong.yml's routes with their effective plugins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from test_kong_jwks import jwk_of
from test_kong_yml import SITE, kong_yml

from kong import render

ISSUER = "http://keycloak:8080/realms/firecrest"
SERVICES = ("status", "utilities", "compute", "storage", "tasks")

ROUTE_LINE = re.compile(r"^http-request set-var\(txn\.route\) str\((\S+)\) if (!route_set (?:\{ path_beg (\S+) \}|"
                        r"\{ path_reg \^(\S+) \})(?: \{ method ([A-Z ]+) \})?)$")
UPATH_LINE = re.compile(r"^http-request set-var\(txn\.upath\) \S+ if (.+)$")
RETURN_LINE = re.compile(r"^http-request return status (\d+)(?: content-type (\S+) string '([^']*)')?(.*?)"
                         r"(?: (if|unless) (.+))?$")
ON_ROUTES = re.compile(r"^\{ var\(txn\.route\) -m str ([^}]+) \}$")
SERVER_LINE = re.compile(r"^server(?:-template)? (\S+) (?:\d+ )?(\S+:\d+)")


@dataclass
class Haproxy:
    lines: list[str]
    routes: set[tuple[str, str, frozenset[str]]] = field(default_factory=set)
    stripped: set[tuple[str, str]] = field(default_factory=set)
    outcomes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    returns: list[tuple[int, str | None, str, str]] = field(default_factory=list)  # status, body, hdrs, condition
    key_files: list[str] = field(default_factory=list)


def parse_backends(lines: list[str]) -> dict[str, tuple[Any, ...]]:
    """backend svc_NAME -> ("forward", "http://host:port") or ("terminate", status, content type, body)."""
    out: dict[str, tuple[Any, ...]] = {}
    name = None
    for line in lines:
        if line.startswith("backend "):
            name = line.split()[1].removeprefix("svc_") if line.startswith("backend svc_") else None
        elif name and (m := SERVER_LINE.match(line)):
            out[name] = ("forward", f"http://{m.group(2)}")
        elif name and (m := RETURN_LINE.match(line)):
            out[name] = ("terminate", int(m.group(1)), m.group(2), m.group(3))
    return out


def parse_haproxy(text: str) -> Haproxy:
    lines = [line.strip() for line in text.splitlines()]
    frontend = lines[lines.index("frontend firecrest"):next(i for i, x in enumerate(lines) if x.startswith("backend"))]
    hap, conditions = Haproxy(lines), {}
    for line in frontend:
        if m := ROUTE_LINE.match(line):
            path = m.group(3) or "~" + (m.group(4) or "")
            hap.routes.add((m.group(1), path, frozenset((m.group(5) or "").split())))
            conditions[m.group(2)] = (m.group(1), path)
        elif m := RETURN_LINE.match(line):
            hap.returns.append((int(m.group(1)), m.group(3), m.group(4), f"{m.group(5)} {m.group(6)}"))
            on = ON_ROUTES.match(m.group(6) or "")
            if m.group(5) == "if" and on and int(m.group(1)) != 204:
                hap.outcomes.update({r: ("terminate", int(m.group(1)), m.group(2), m.group(3))
                                     for r in on.group(1).split()})
    for line in frontend:
        if m := UPATH_LINE.match(line):
            hap.stripped.add(conditions.get(m.group(1), ("<no route>", m.group(1))))
    backends = parse_backends(lines)
    for line in frontend:
        if line.startswith("use_backend svc_") and (on := ON_ROUTES.match(line.split(" if ", 1)[1])):
            hap.outcomes.update({r: backends[line.split()[1].removeprefix("svc_")] for r in on.group(1).split()})
    hap.key_files = re.findall(r'jwt_verify\("RS256","([^"]+)"\)', text)
    return hap


# --- Kong's side: the filled kong.yml as Kong reads it ------------------------------------------------------------

def kong_routes(kong: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(route, its service) for the services' routes and the top-level ones."""
    services = {s["name"]: s for s in kong.get("services") or []}
    pairs = [(r, s) for s in services.values() for r in s.get("routes") or []]
    for r in kong.get("routes") or []:
        ref = r.get("service")
        pairs.append((r, services.get(ref.get("name") if isinstance(ref, dict) else ref) if ref else None))
    return pairs


def enabled(entity: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {p["name"]: p.get("config") or {} for p in (entity or {}).get("plugins") or [] if p.get("enabled", True)}


def effective_plugins(kong: dict[str, Any], route: dict[str, Any], service: dict[str, Any] | None) -> dict[str, Any]:
    """Kong's precedence for one plugin name: the route's, else the service's, else the global one."""
    return {**enabled(kong), **enabled(service), **enabled(route)}


def kong_outcome(kong: dict[str, Any], route: dict[str, Any], service: dict[str, Any] | None) -> tuple[Any, ...]:
    term = effective_plugins(kong, route, service).get("request-termination")
    if term is not None:
        return ("terminate", int(term.get("status_code", 503)), term.get("content_type"), term.get("body"))
    assert service is not None, f"route {route['name']}: no service and no termination"
    return ("forward", service["url"].rstrip("/"))



def rendered(tmp_path: Path, config: dict[str, Any] | None = None, *extra: str,
             upstreams: tuple[str, ...] = SERVICES) -> tuple[dict[str, Any], str]:
    """One render.py call, as the gateway image's entrypoint makes it: (the filled kong.yml, haproxy.cfg's text)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk_of(key, kid="k", use="sig", alg="RS256")]}))
    (tmp_path / "kong.in.yml").write_text(yaml.safe_dump(config or kong_yml(), sort_keys=False))
    code = render.main(["--config", str(tmp_path / "kong.in.yml"), "--out", str(tmp_path / "haproxy.cfg"),
                        "--kong-out", str(tmp_path / "kong.yml"), "--issuer", ISSUER, "--audience", "firecrest",
                        "--site", str(SITE), "--jwks", str(tmp_path / "jwks.json"), "--key-dir", str(tmp_path / "keys"),
                        *(f"--upstream={n}=http://{n}:8000" for n in upstreams), *extra])
    assert code == 0
    return yaml.safe_load((tmp_path / "kong.yml").read_text()), (tmp_path / "haproxy.cfg").read_text()


def test_the_reader_sees_routes_outcomes_and_keys(tmp_path):
    kong, text = rendered(tmp_path, None, "--upstream-replicas", "2", upstreams=("status",))
    hap = parse_haproxy(text)
    assert ("status", "~/status$", frozenset({"GET", "OPTIONS"})) in hap.routes
    assert ("tasks", "/tasks/") in hap.stripped and not any(r == "internal" for r, _ in hap.stripped)
    assert hap.outcomes["status"] == ("forward", "http://status:8000")  # a server-template's address
    assert hap.outcomes["internal"] == ("terminate", 404, "application/json", '{"description":"Not found"}')
    assert [Path(f).read_text() for f in hap.key_files] == [kong["consumers"][0]["jwt_secrets"][0]["rsa_public_key"]]


def test_kong_side_applies_kongs_plugin_precedence(tmp_path):
    kong, _ = rendered(tmp_path, upstreams=("status",))
    pairs = {r["name"]: (r, s) for r, s in kong_routes(kong)}
    assert kong_outcome(kong, *pairs["compute"])[:2] == ("terminate", 503)  # the service's, not deployed
    assert kong_outcome(kong, *pairs["compute-method-not-allowed"])[:2] == ("terminate", 405)  # the route's wins
    assert pairs["not-found"][1] is None and "jwt" in effective_plugins(kong, *pairs["not-found"])
