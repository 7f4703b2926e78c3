#!/usr/bin/env python3
"""Render kong/kong.yml into the HAProxy 2.6 configuration of the embedded site.

    render.py --out haproxy.cfg --issuer URL --audience AUD --jwks FILE|URL --key-dir DIR \
              [--config kong/kong.yml] [--bind 127.0.0.1] [--port 8000] [--upstream NAME=URL ...] [--kong-out FILE]

Upstreams come from `--upstream status=http://127.0.0.1:5101` or the environment (`FIRECREST_INTERNAL_STATUS_URL`);
a service without one is rendered as a backend answering 503 {"description":"Service not deployed"}. The realm's
RS256 signing keys (`use: sig` RSA keys of the JWKS) are written to `--key-dir` as PEM files that HAProxy loads at
start-up. `--kong-out` writes kong.yml with its placeholders filled, for a real Kong.

What is rendered, in request order: client-sent X-Auth-* headers dropped; X-Request-ID kept if well-formed, else a
uuid; a per-source rate limit (before any RSA work); non-canonical paths refused (400); Kong's route selection;
CORS preflights (204) and request-termination routes answered; the JWT checked (alg pinned to RS256, signature
against each realm key, iss, aud, typ, exp, nbf) with 401 otherwise; X-Auth-Sub/X-Auth-Client set from the
verified token; the per-user limit (429 + Retry-After); the route's prefix stripped; the request forwarded.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Values written into HAProxy ACL patterns and header values unquoted: keep them to URL-ish characters.
SAFE = re.compile(r"^[A-Za-z0-9._~:/@+-]+$")
# Route paths: plain ones are also used as regexes (prefix strip), `~` ones go into regsub() and path_reg.
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/_-]*$")
REGEX_PATH = re.compile(r"^~/[A-Za-z0-9._/^$?+*-]*$")
TIMEOUT_NAME = re.compile(r"^(connect|client|server|http-request|http-keep-alive|queue|tunnel)$")
WINDOWS = {"second": 1, "minute": 60, "hour": 3600}
KNOWN_PLUGINS = {"jwt", "rate-limiting", "correlation-id", "cors", "request-termination", "pre-function"}
UNAUTHORIZED = '{"message":"Unauthorized"}'
RATE_LIMITED = '{"message":"API rate limit exceeded"}'
INVALID_PATH = '{"description":"Invalid path"}'
NO_ROUTE = '{"message":"no Route matched with those values"}'
NOT_DEPLOYED = '{"description":"Service not deployed"}'
ERRORS = {400: "Bad request", 408: "Request timeout", 502: "Bad gateway", 503: "Service unavailable",
          504: "Gateway timeout"}


class RenderError(Exception):
    """kong.yml uses something this renderer cannot express in HAProxy, or a value is missing."""


# --- placeholders -------------------------------------------------------------------------------------------------

def fill(node: Any, values: dict[str, str]) -> Any:
    """Replace `${NAME}` in every string of the parsed YAML tree; an unknown placeholder is an error."""
    if isinstance(node, dict):
        return {k: fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if isinstance(node, str):
        missing = [name for name in PLACEHOLDER.findall(node) if name not in values]
        if missing:
            raise RenderError(f"no value for placeholder(s) {', '.join(missing)}")
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], node)
    return node


# --- JWKS -> PEM --------------------------------------------------------------------------------------------------

def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _der_uint(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # + 1: a leading 0 keeps it positive


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def rsa_public_pem(n: int, e: int) -> str:
    """SubjectPublicKeyInfo PEM for an RSA public key (what HAProxy's jwt_verify and Kong accept)."""
    rsa_encryption = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = _der(0x30, rsa_encryption + _der(0x03, b"\x00" + _der(0x30, _der_uint(n) + _der_uint(e))))
    body = base64.b64encode(spki).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"]) + "\n"


def jwks_to_pems(jwks: dict[str, Any]) -> dict[str, str]:
    """kid -> PEM for the RSA signing keys usable with RS256 (Keycloak also publishes an RSA-OAEP `enc` key)."""
    pems: dict[str, str] = {}
    for i, key in enumerate(jwks.get("keys", [])):
        if key.get("kty") != "RSA" or key.get("use", "sig") != "sig" or key.get("alg", "RS256") != "RS256":
            continue
        pems[str(key.get("kid", f"key{i}"))] = rsa_public_pem(_b64url_int(key["n"]), _b64url_int(key["e"]))
    return pems


def write_keys(pems: dict[str, str], key_dir: Path) -> list[Path]:
    """One `<kid>.pem` per key (file names sanitised); stale PEM files from earlier keys are removed."""
    key_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (kid, pem) in enumerate(pems.items()):
        path = key_dir / f"{i}-{re.sub(r'[^A-Za-z0-9._-]', '_', kid)[:80]}.pem"
        path.write_text(pem)
        paths.append(path)
    for old in key_dir.glob("*.pem"):
        if old not in paths:
            old.unlink()
    return paths


# --- reading kong.yml ---------------------------------------------------------------------------------------------

@dataclass
class Route:
    name: str
    paths: list[str]
    methods: list[str]
    service: str | None = None
    strip: bool = True
    cors: dict[str, Any] | None = None
    termination: dict[str, Any] | None = None


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
    if set(r) & {"hosts", "headers", "snis", "sources", "destinations", "expression"}:
        raise RenderError(f"route {r['name']}: only paths and methods are rendered")
    if not r.get("paths"):
        raise RenderError(f"route {r['name']}: no paths")
    plugins = {**inherited, **_plugins(r)}
    route = Route(
        name=_safe(r["name"], "route name"),
        paths=[_safe(p, f"route {r['name']} path", REGEX_PATH if p.startswith("~") else PLAIN_PATH)
               for p in r["paths"]],
        methods=[m.upper() for m in r.get("methods") or []],
        service=service,
        strip=r.get("strip_path", True),
        cors=plugins.get("cors"),
        termination=plugins.get("request-termination"),
    )
    if route.service is None and route.termination is None:
        raise RenderError(f"route {route.name}: neither a service nor request-termination")
    if route.cors and route.cors.get("origins", ["*"]) != ["*"]:
        raise RenderError(f"route {route.name}: only cors origins ['*'] are rendered")
    return route


def load(config: dict[str, Any]) -> Gateway:
    """Interpret the (filled) kong.yml: what the HAProxy rendering needs, checked for what it cannot express."""
    local = next((x["local_gateway"] for x in config.get("_ignore") or [] if "local_gateway" in x), None)
    if local is None:
        raise RenderError("kong.yml has no `_ignore: [local_gateway: ...]` block")
    plugins = _plugins(config)
    if {"cors", "request-termination"} & set(plugins):
        raise RenderError("cors and request-termination are rendered per service or route, not globally")
    if "jwt" not in plugins:
        raise RenderError("the global jwt plugin is missing")
    jwt = plugins["jwt"]
    if jwt.get("key_claim_name", "iss") != "iss" or "exp" not in jwt.get("claims_to_verify", []):
        raise RenderError("jwt: only key_claim_name iss with exp in claims_to_verify is rendered")
    if [h.lower() for h in jwt.get("header_names", ["authorization"])] != ["authorization"]:
        raise RenderError("jwt: only the Authorization header is rendered")
    secrets = [s for c in config.get("consumers") or [] for s in c.get("jwt_secrets") or []]
    if len(secrets) != 1 or secrets[0].get("algorithm") != "RS256":
        raise RenderError("exactly one consumer jwt_secret with algorithm RS256 (the realm) is rendered")

    rate: dict[int, int] = {}
    if "rate-limiting" in plugins:
        rl = plugins["rate-limiting"]
        if (rl.get("limit_by"), rl.get("header_name")) != ("header", "X-Auth-Sub"):
            raise RenderError("rate-limiting: only limit_by header X-Auth-Sub (the verified sub) is rendered")
        rate = {seconds: int(rl[w]) for w, seconds in WINDOWS.items() if rl.get(w)}
        if len(rate) > 2 or set(rl) & {"day", "month", "year"}:
            raise RenderError("rate-limiting: at most two of second/minute/hour are rendered")
    correlation = plugins.get("correlation-id")
    per_source = local["per_source"]
    gw = Gateway(
        issuer=_safe(secrets[0]["key"], "issuer"),
        audience=_safe(local["audience"], "audience"),
        aud_slots=int(local.get("audience_array_slots", 5)),
        typ=_safe(local["token_typ"], "token typ") if local.get("token_typ") else None,
        require_nbf="nbf" in jwt.get("claims_to_verify", []),
        rate=rate,
        request_id_header=_safe(correlation["header_name"], "header") if correlation else None,
        request_id_echo=bool(correlation and correlation.get("echo_downstream")),
        request_id_pattern=_safe(local["request_id_pattern"], "request id pattern", re.compile(r"^\^[^\s'\"#\\]+\$$")),
        per_source=(int(per_source["period_seconds"]), int(per_source["limit"])),
        maxconn=int(local.get("maxconn", 2000)),
        timeouts={_safe(k, "timeout", TIMEOUT_NAME): _safe(str(v), f"timeout {k}") for k, v in
                  (local.get("timeouts") or {}).items()},
        services={s["name"]: s["url"] for s in config.get("services") or []},
    )
    for s in config.get("services") or []:
        _safe(s["name"], "service name")
        inherited = _plugins(s)
        gw.routes += [_route(r, s["name"], inherited) for r in s.get("routes") or []]
    for r in config.get("routes") or []:
        service = r.get("service")
        gw.routes.append(_route(r, service.get("name") if isinstance(service, dict) else service, {}))
    return gw


def match_order(routes: list[Route]) -> list[tuple[Route, str]]:
    """(route, path) pairs in Kong's order: more attributes first, regex before plain, then longer paths."""
    pairs = [(r, p) for r in routes for p in r.paths]
    return sorted(pairs, key=lambda rp: (-bool(rp[0].methods), -rp[1].startswith("~"), -len(rp[1].lstrip("~"))))


# --- writing haproxy.cfg ------------------------------------------------------------------------------------------

def path_acl(path: str) -> str:
    """A Kong path as an HAProxy condition: plain paths are string prefixes, `~` paths regexes anchored at the start."""
    return f"{{ path_reg ^{path[1:]} }}" if path.startswith("~") else f"{{ path_beg {path} }}"


def strip_expr(path: str) -> str:
    """The sample expression for the upstream path once the route's prefix is stripped (empty -> "/")."""
    return f"path,regsub(^{path.lstrip('~')},/),regsub(^//,/)"


def quoted_list(items: list[str]) -> str:
    return '"' + ", ".join(items) + '"'


def json_return(status: int, body: str, *headers: str) -> str:
    hdrs = "".join(f" hdr {h}" for h in headers)
    return f"http-request return status {status} content-type application/json string '{body}'{hdrs}"


def upstream_server(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise RenderError(f"upstream {name}: {url!r} is not http://host:port")
    return f"server {name} {parts.hostname}:{parts.port or 80}"


def render(gw: Gateway, bind: str, port: int, upstreams: dict[str, str], keys: list[Path]) -> str:
    """The whole HAProxy configuration; the frontend's rules run in the order they are listed here."""
    if not keys:
        raise RenderError("no RS256 signing key: every token would be rejected")
    rate_rules, rate_tables = per_user_limits(gw)
    frontend = [
        *header_rules(gw),
        *source_limit_and_path_rules(gw),
        *routing_rules(gw),
        *cors_rules(gw.routes),
        "", "    # request-termination routes (internal surfaces, methods not allowed, everything else).",
        *(f"    {termination(gw, r)} if {{ var(txn.route) -m str {r.name} }}" for r in gw.routes if r.termination),
        "", *jwt_rules(gw, keys),
        "", "    # The verified identity, for the services and the log.",
        "    http-request set-var(txn.user) var(txn.sub)",
        "    http-request set-header X-Auth-Sub %[var(txn.sub)]",
        "    http-request set-header X-Auth-Client %[var(txn.azp)]",
        *rate_rules,
    ]
    forward, backends = forwarding(gw, upstreams)
    return "\n".join([*preamble(gw, bind, port), *frontend, *forward, *backends, *rate_tables]) + "\n"


def preamble(gw: Gateway, bind: str, port: int) -> list[str]:
    timeouts = {"connect": "5s", "client": "120s", "server": "120s", "http-request": "10s", "http-keep-alive": "10s",
                "queue": "30s", **gw.timeouts}
    period = gw.per_source[0]
    return [
        "# Generated from kong/kong.yml by kong/render.py -- do not edit; change kong/kong.yml and render again.",
        "global",
        "    log stdout format raw local0 info",
        f"    maxconn {gw.maxconn * 2}",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        # Keep-alive to the services (gunicorn gthread): +5-8 % req/s and -0.2 ms per request against
        # http-server-close on the embedded site. A request on a reused connection that the server closed at the
        # same moment is retried, but only if it is a GET (retry-on in the backends).
        "    option http-keep-alive",
        "    http-reuse safe",
        "    option forwardfor",
        *(f"    timeout {k} {v}" for k, v in timeouts.items()),
        *(f"    http-error status {code} content-type application/json string '{{\"description\":\"{text}\"}}'"
          for code, text in ERRORS.items()),
        "",
        "frontend firecrest",
        f"    bind {bind}:{port}",
        f"    maxconn {gw.maxconn}",
        # The path only (%HPO), never the query string (a `?jwt=` token or signature would be kept in the log)
        # nor any header.
        '    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %HM %{+Q}HPO'
        ' rid=%[var(txn.rid)] route=%[var(txn.route)] user=%[var(txn.user)]"',
        f"    stick-table type ipv6 size 100k expire {period * 2}s store http_req_rate({period}s)",
    ]


def header_rules(gw: Gateway) -> list[str]:
    out = [
        "",
        "    # Identity and forwarding headers come from the gateway only.",
        "    http-request del-header X-Auth- -m beg",  # names are compared case-insensitively (-m reg is not)
        "    http-request del-header X-Forwarded-For",
        "    http-request set-header X-Forwarded-Proto http",
    ]
    if gw.request_id_header:
        h = gw.request_id_header
        out += [
            "",
            f"    # {h}: the client's if well-formed, else a fresh uuid; sent upstream, returned, logged.",
            f"    acl rid_ok req.hdr_cnt({h}) eq 1",
            f"    acl rid_ok_value req.fhdr({h}) -m reg {gw.request_id_pattern}",
            f"    http-request set-var(txn.rid) req.fhdr({h}) if rid_ok rid_ok_value",
            "    http-request set-var(txn.rid) uuid() unless { var(txn.rid) -m found }",
            f"    http-request set-header {h} %[var(txn.rid)]",
            *([f"    http-after-response set-header {h} %[var(txn.rid)]"] if gw.request_id_echo else []),
        ]
    return out


def source_limit_and_path_rules(gw: Gateway) -> list[str]:
    period, limit = gw.per_source
    return [
        "",
        "    # Per-source flood limit, before any RSA work. As in Kong, only admitted requests count.",
        f"    {json_return(429, RATE_LIMITED, f'Retry-After {period}')} "
        f"if {{ src,table_http_req_rate(firecrest) ge {limit} }}",
        "    http-request track-sc0 src",
        "",
        "    # Only canonical paths are routed (the services would decode %XX and merge slashes after routing).",
        "    acl path_bad path_sub // /./ /../ %",
        "    acl path_bad path_end /. /..",
        f"    {json_return(400, INVALID_PATH)} if path_bad",
    ]


def routing_rules(gw: Gateway) -> list[str]:
    out = [
        "",
        "    # Route selection, in Kong's priority order; txn.route names the route, txn.upath is the stripped path.",
        "    acl route_set var(txn.route) -m found",
    ]
    for route, path in match_order(gw.routes):
        cond = f"!route_set {path_acl(path)}" + (f" {{ method {' '.join(route.methods)} }}" if route.methods else "")
        if route.service and route.strip and not route.termination:
            out.append(f"    http-request set-var(txn.upath) {strip_expr(path)} if {cond}")
        out.append(f"    http-request set-var(txn.route) str({route.name}) if {cond}")
    return [*out, f"    {json_return(404, NO_ROUTE)} unless route_set"]


def per_user_limits(gw: Gateway) -> tuple[list[str], list[str]]:
    """Frontend rules (sticky counters 1 and 2, on the verified sub) and one stick-table backend per window.

    The rate is looked up before the request is counted, so (as in Kong) refused requests do not count: a client
    that keeps hammering still gets `limit` requests per window through instead of none.
    """
    rules, tables = [], []
    for counter, (seconds, limit) in enumerate(sorted(gw.rate.items()), start=1):
        table = f"rate_sub_{seconds}s"
        rules += [f"    {json_return(429, RATE_LIMITED, f'Retry-After {seconds}')} "
                  f"if {{ var(txn.sub),table_http_req_rate({table}) ge {limit} }}",
                  f"    http-request track-sc{counter} var(txn.sub) table {table}"]
        tables += ["", f"backend {table}",
                   f"    stick-table type string len 128 size 100k expire {max(2 * seconds, 10)}s "
                   f"store http_req_rate({seconds}s)"]
    return (["", "    # Per-user rate limits (the verified sub).", *rules] if rules else []), tables


def forwarding(gw: Gateway, upstreams: dict[str, str]) -> tuple[list[str], list[str]]:
    """The frontend's last rules (strip, pick the backend) and one backend per service (503 if not deployed)."""
    services = sorted({r.service for r in gw.routes if r.service and not r.termination})
    rules = ["", "    # Forward: strip the route's prefix, pick the service.",
             "    http-request set-path %[var(txn.upath)] if { var(txn.upath) -m found }"]
    backends = []
    for name in services:
        routes = " ".join(r.name for r in gw.routes if r.service == name and not r.termination)
        rules.append(f"    use_backend svc_{name} if {{ var(txn.route) -m str {routes} }}")
        backends += ["", f"backend svc_{name}"]
        if upstreams.get(name):
            backends += ["    retry-on conn-failure empty-response",
                         "    http-request disable-l7-retry unless METH_GET",
                         f"    {upstream_server(name, upstreams[name])}"]
        else:
            backends.append(f"    {json_return(503, NOT_DEPLOYED)}")
    return rules, backends


def cors_rules(routes: list[Route]) -> list[str]:
    """Preflights (any OPTIONS on a CORS route) answered with 204; responses of CORS routes get the headers."""
    cors = [r for r in routes if r.cors]
    if not cors:
        return []
    out = ["", "    # CORS: preflights are answered here, without a token; answers on CORS routes get the headers."]
    for r in cors:
        c = r.cors or {}
        out.append(
            "    http-request return status 204 hdr Access-Control-Allow-Origin \"*\""
            f" hdr Access-Control-Allow-Methods {quoted_list(c.get('methods') or r.methods)}"
            f" hdr Access-Control-Allow-Headers {quoted_list(c.get('headers') or [])}"
            f" hdr Access-Control-Max-Age {int(c.get('max_age') or 0)}"
            f" if METH_OPTIONS {{ var(txn.route) -m str {r.name} }}")
    on_cors_routes = f"{{ var(txn.route) -m str {' '.join(r.name for r in cors)} }}"
    out.append(f'    http-after-response set-header Access-Control-Allow-Origin "*" if {on_cors_routes}')
    exposed: dict[str, list[str]] = {}
    for r in cors:
        if (r.cors or {}).get("exposed_headers"):
            exposed.setdefault(quoted_list((r.cors or {})["exposed_headers"]), []).append(r.name)
    for value, route_names in exposed.items():
        out.append(f"    http-after-response set-header Access-Control-Expose-Headers {value}"
                   f" if {{ var(txn.route) -m str {' '.join(route_names)} }}")
    return out


def termination(gw: Gateway, route: Route) -> str:
    """Kong's request-termination as an HAProxy return; a 405 also lists the methods the same paths allow."""
    term = route.termination or {}
    status = int(term.get("status_code", 503))
    body = term.get("body") or json.dumps({"message": term.get("message", "")}, separators=(",", ":"))
    if term.get("content_type", "application/json") != "application/json" or "'" in body:
        raise RenderError(f"route {route.name}: only application/json termination bodies without ' are rendered")
    allow = [m for r in gw.routes if r.service and not r.termination and r.paths == route.paths for m in r.methods]
    return json_return(status, body, *([f"Allow {quoted_list(allow)}"] if status == 405 and allow else []))


def jwt_rules(gw: Gateway, keys: list[Path]) -> list[str]:
    """Claim checks first and the RSA signature last, so a token with wrong claims costs no RSA work."""
    deny = json_return(401, UNAUTHORIZED, "WWW-Authenticate Bearer")
    out = [
        "    # JWT (platform-notes section 7): alg is a literal, claims are read, then one ACL per realm key.",
        "    http-request set-var(txn.bearer) http_auth_bearer",
        "    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')",
        *(f"    http-request set-var(txn.{c}) var(txn.bearer),jwt_payload_query('$.{c}')"
          for c in ("typ", "iss", "sub", "azp")),
        "    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')",
        "    http-request set-var(txn.nbf) var(txn.bearer),jwt_payload_query('$.nbf','int')",
        "    http-request set-var(txn.now) date()",
        "    acl jwt_one_header req.hdr_cnt(Authorization) eq 1",
        "    acl jwt_alg_ok var(txn.alg) -m str RS256",
        f"    acl jwt_iss_ok var(txn.iss) -m str {gw.issuer}",
        f"    acl jwt_aud_ok var(txn.bearer),jwt_payload_query('$.aud') -m str {gw.audience}",
        *(f"    acl jwt_aud_ok var(txn.bearer),jwt_payload_query('$.aud[{i}]') -m str {gw.audience}"
          for i in range(gw.aud_slots)),
        "    acl jwt_has_sub var(txn.sub) -m len gt 0",
        # json_query's 'int' passes a non-numeric string through unchanged: require digits (PyJWT: int(claim)).
        "    acl jwt_has_exp var(txn.exp) -m reg ^[0-9]{1,12}$",
        "    acl jwt_expired var(txn.exp),sub(txn.now) -m int le 0",
        "    acl jwt_has_nbf var(txn.nbf) -m found",
        "    acl jwt_nbf_int var(txn.nbf) -m reg ^[0-9]{1,12}$",
        "    acl jwt_not_yet var(txn.nbf),sub(txn.now) -m int gt 0",
        *(f'    acl jwt_sig_ok var(txn.bearer),jwt_verify("RS256","{k}") -m int 1' for k in keys),
    ]
    if gw.typ:
        out.append(f"    acl jwt_typ_ok var(txn.typ) -m str {gw.typ}")
    required = ["jwt_one_header", "jwt_alg_ok", *(["jwt_typ_ok"] if gw.typ else []), "jwt_iss_ok", "jwt_aud_ok",
                "jwt_has_sub", "jwt_has_exp", "!jwt_expired", *(["jwt_has_nbf"] if gw.require_nbf else []),
                "jwt_sig_ok"]
    return out + [f"    {deny} unless {' '.join(required)}",
                  f"    {deny} if jwt_has_nbf !jwt_nbf_int",
                  f"    {deny} if jwt_not_yet"]


# --- command line -------------------------------------------------------------------------------------------------

def read_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as r:  # noqa: S310 (the operator's JWKS URL)
            return json.load(r)
    return json.loads(Path(source).read_text())


def upstreams_from(args: list[str], services: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """NAME=URL arguments win over FIRECREST_INTERNAL_<NAME>_URL; unknown names are an error."""
    found = {n: environ[f"FIRECREST_INTERNAL_{n.upper().replace('-', '_')}_URL"] for n in services
             if environ.get(f"FIRECREST_INTERNAL_{n.upper().replace('-', '_')}_URL")}
    for item in args:
        name, sep, url = item.partition("=")
        if not sep or name not in services:
            raise RenderError(f"--upstream {item!r}: expected NAME=URL with NAME one of {', '.join(services)}")
        found[name] = url
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=HERE / "kong.yml")
    p.add_argument("--out", type=Path, required=True, help="the HAProxy configuration to write")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--issuer", default=os.environ.get("FIRECREST_ISSUER"))
    p.add_argument("--audience", default=os.environ.get("FIRECREST_AUDIENCE"))
    p.add_argument("--jwks", required=True, help="the realm's JWKS: a file or an http(s) URL")
    p.add_argument("--key-dir", type=Path, required=True, help="where the realm's signing keys go as PEM files")
    p.add_argument("--upstream", action="append", default=[], metavar="NAME=URL")
    p.add_argument("--kong-out", type=Path, help="also write kong.yml with its placeholders filled")
    args = p.parse_args(argv)
    try:
        if not args.issuer or not args.audience:
            raise RenderError("--issuer and --audience (or FIRECREST_ISSUER, FIRECREST_AUDIENCE) are required")
        pems = jwks_to_pems(read_jwks(args.jwks))
        if not pems:
            raise RenderError(f"{args.jwks}: no RSA signing key for RS256")
        values = {"FIRECREST_ISSUER": args.issuer, "FIRECREST_AUDIENCE": args.audience,
                  "FIRECREST_REALM_PUBLIC_KEY": next(iter(pems.values()))}
        config = fill(yaml.safe_load(args.config.read_text()), values)
        gw = load(config)
        upstreams = upstreams_from(args.upstream, gw.services, dict(os.environ))
        text = render(gw, args.bind, args.port, upstreams, write_keys(pems, args.key_dir))
    except (RenderError, OSError, KeyError, ValueError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.kong_out:
        args.kong_out.write_text(yaml.safe_dump(config, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
