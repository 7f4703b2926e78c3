"""Reading the filled kong.yml into what the HAProxy rendering needs, refusing what it cannot express."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kong.applications import Applications
from kong.errors import RenderError

# Values written into HAProxy ACL patterns and header values unquoted: keep them to URL-ish characters.
SAFE = re.compile(r"^[A-Za-z0-9._~:/@+-]+$")
# Route paths: plain ones are also used as regexes (prefix strip), `~` ones go into regsub() and path_reg.
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/_-]*$")
REGEX_PATH = re.compile(r"^~/[A-Za-z0-9._/^$?+*-]*$")
REQUEST_ID_PATTERN = re.compile(r"^\^[^\s'\"#\\]+\$$")
TIMEOUT_NAME = re.compile(r"^(connect|client|server|http-request|http-keep-alive|queue|tunnel)$")
WINDOWS = {"second": 1, "minute": 60, "hour": 3600}
KNOWN_PLUGINS = {"jwt", "rate-limiting", "correlation-id", "cors", "request-termination", "pre-function"}
ROUTE_MATCHERS_NOT_RENDERED = {"hosts", "headers", "snis", "sources", "destinations", "expression"}


@dataclass
class Route:
    name: str
    paths: list[str]
    methods: list[str]
    service: str | None = None
    strip: bool = True
    cors: dict[str, Any] | None = None
    termination: dict[str, Any] | None = None
    public: bool = False  # its own jwt lets requests without a valid token through (`anonymous`): no JWT checks


@dataclass
class Gateway:
    issuer: str
    audience: str
    aud_slots: int
    typ: str | None
    require_nbf: bool
    rate: dict[int, int]  # window seconds -> limit per verified sub
    request_id_header: str | None
    request_id_echo: bool
    request_id_pattern: str
    per_source: tuple[int, int]  # (period seconds, limit)
    maxconn: int
    timeouts: dict[str, str]
    services: dict[str, str]  # name -> url in kong.yml
    routes: list[Route] = field(default_factory=list)
    applications: Applications | None = None  # from the site file (render.py --site)


def _plugins(entity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for p in entity.get("plugins") or []:
        if p["name"] not in KNOWN_PLUGINS:
            raise RenderError(f"plugin {p['name']!r} has no HAProxy rendering")
        if p.get("enabled", True):
            found[p["name"]] = p.get("config") or {}
    return found


def _safe(value: str, what: str, pattern: re.Pattern[str] = SAFE) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise RenderError(f"{what} {value!r} has characters this renderer does not write into HAProxy")
    return value


def _route(r: dict[str, Any], service: str | None, inherited: dict[str, dict[str, Any]]) -> Route:
    if set(r) & ROUTE_MATCHERS_NOT_RENDERED:
        raise RenderError(f"route {r['name']}: only paths and methods are rendered")
    if not r.get("paths"):
        raise RenderError(f"route {r['name']}: no paths")
    plugins = {**inherited, **_plugins(r)}
    public = _public(r["name"], plugins)
    route = Route(
        name=_safe(r["name"], "route name"),
        paths=[_safe(p, f"route {r['name']} path", REGEX_PATH if p.startswith("~") else PLAIN_PATH)
               for p in r["paths"]],
        methods=[m.upper() for m in r.get("methods") or []],
        service=service,
        strip=r.get("strip_path", True),
        cors=plugins.get("cors"),
        termination=plugins.get("request-termination"),
        public=public,
    )
    if route.service is None and route.termination is None:
        raise RenderError(f"route {route.name}: neither a service nor request-termination")
    if route.cors and route.cors.get("origins", ["*"]) != ["*"]:
        raise RenderError(f"route {route.name}: only cors origins ['*'] are rendered")
    return route


def _public(name: str, plugins: dict[str, dict[str, Any]]) -> bool:
    """A route (or service) may replace the global jwt only with one that lets anyone through as `anonymous`, and
    then must replace the global pre-function too (Kong's would still ask for a token); its own pre-function may
    only drop client-sent identity headers, as every request's first rules do here."""
    if "jwt" not in plugins and "pre-function" not in plugins:
        return False
    if not plugins.get("jwt", {}).get("anonymous") or "pre-function" not in plugins:
        raise RenderError(f"route {name}: a route's own jwt (with `anonymous`) and pre-function come together")
    if set(plugins["pre-function"]) != {"access"} or any(
            "exit" in code or "set_header" in code for code in plugins["pre-function"]["access"]):
        raise RenderError(f"route {name}: a route's own pre-function may only clear headers")
    return True


def _local_gateway(config: dict[str, Any]) -> dict[str, Any]:
    """The settings only the local gateway has (kong.yml keeps them under `_ignore`, which Kong skips)."""
    local = next((x["local_gateway"] for x in config.get("_ignore") or [] if "local_gateway" in x), None)
    if local is None:
        raise RenderError("kong.yml has no `_ignore: [local_gateway: ...]` block")
    return local


def _jwt_plugin(plugins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if "jwt" not in plugins:
        raise RenderError("the global jwt plugin is missing")
    jwt = plugins["jwt"]
    if jwt.get("key_claim_name", "iss") != "iss" or "exp" not in jwt.get("claims_to_verify", []):
        raise RenderError("jwt: only key_claim_name iss with exp in claims_to_verify is rendered")
    if [h.lower() for h in jwt.get("header_names", ["authorization"])] != ["authorization"]:
        raise RenderError("jwt: only the Authorization header is rendered")
    return jwt


def _realm_secret(config: dict[str, Any]) -> dict[str, Any]:
    """The one consumer secret (its key is the issuer): tokens are accepted from the realm only."""
    secrets = [s for c in config.get("consumers") or [] for s in c.get("jwt_secrets") or []]
    if len(secrets) != 1 or secrets[0].get("algorithm") != "RS256":
        raise RenderError("exactly one consumer jwt_secret with algorithm RS256 (the realm) is rendered")
    return secrets[0]


def _per_user_rate(plugins: dict[str, dict[str, Any]]) -> dict[int, int]:
    """Window seconds -> limit; two at most, since HAProxy has three sticky counters and the source uses one."""
    if "rate-limiting" not in plugins:
        return {}
    rl = plugins["rate-limiting"]
    if (rl.get("limit_by"), rl.get("header_name")) != ("header", "X-Auth-Sub"):
        raise RenderError("rate-limiting: only limit_by header X-Auth-Sub (the verified sub) is rendered")
    rate = {seconds: int(rl[w]) for w, seconds in WINDOWS.items() if rl.get(w)}
    if len(rate) > 2 or set(rl) & {"day", "month", "year"}:
        raise RenderError("rate-limiting: at most two of second/minute/hour are rendered")
    return rate


def _add_routes(gw: Gateway, config: dict[str, Any]) -> None:
    """Routes of services (inheriting their service's plugins), then top-level routes."""
    for s in config.get("services") or []:
        _safe(s["name"], "service name")
        inherited = _plugins(s)
        gw.routes += [_route(r, s["name"], inherited) for r in s.get("routes") or []]
    for r in config.get("routes") or []:
        service = r.get("service")
        gw.routes.append(_route(r, service.get("name") if isinstance(service, dict) else service, {}))


def load(config: dict[str, Any]) -> Gateway:
    """Interpret the (filled) kong.yml: what the HAProxy rendering needs, checked for what it cannot express."""
    local = _local_gateway(config)
    plugins = _plugins(config)
    if {"cors", "request-termination"} & set(plugins):
        raise RenderError("cors and request-termination are rendered per service or route, not globally")
    jwt = _jwt_plugin(plugins)
    secret = _realm_secret(config)
    rate = _per_user_rate(plugins)
    correlation = plugins.get("correlation-id")
    per_source = local["per_source"]
    gw = Gateway(
        issuer=_safe(secret["key"], "issuer"),
        audience=_safe(local["audience"], "audience"),
        aud_slots=int(local.get("audience_array_slots", 5)),
        typ=_safe(local["token_typ"], "token typ") if local.get("token_typ") else None,
        require_nbf="nbf" in jwt.get("claims_to_verify", []),
        rate=rate,
        request_id_header=_safe(correlation["header_name"], "header") if correlation else None,
        request_id_echo=bool(correlation and correlation.get("echo_downstream")),
        request_id_pattern=_safe(local["request_id_pattern"], "request id pattern", REQUEST_ID_PATTERN),
        per_source=(int(per_source["period_seconds"]), int(per_source["limit"])),
        maxconn=int(local.get("maxconn", 2000)),
        timeouts={_safe(k, "timeout", TIMEOUT_NAME): _safe(str(v), f"timeout {k}") for k, v in
                  (local.get("timeouts") or {}).items()},
        services={s["name"]: s["url"] for s in config.get("services") or []},
    )
    _add_routes(gw, config)
    return gw


def match_order(routes: list[Route]) -> list[tuple[Route, str]]:
    """(route, path) pairs in Kong's order: more attributes first, regex before plain, then longer paths."""
    pairs = [(r, p) for r in routes for p in r.paths]
    return sorted(pairs, key=lambda rp: (-bool(rp[0].methods), -rp[1].startswith("~"), -len(rp[1].lstrip("~"))))
