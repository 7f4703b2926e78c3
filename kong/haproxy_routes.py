"""Kong's routes as HAProxy rules: route selection, CORS, request-termination, and forwarding to the services."""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from kong.errors import RenderError
from kong.haproxy_text import NO_ROUTE, NOT_DEPLOYED, json_return, quoted_list
from kong.kong_yml import Gateway, Route, match_order


def path_acl(path: str) -> str:
    """A Kong path as an HAProxy condition: plain paths are string prefixes, `~` paths regexes anchored at the start."""
    return f"{{ path_reg ^{path[1:]} }}" if path.startswith("~") else f"{{ path_beg {path} }}"


def strip_expr(path: str) -> str:
    """The sample expression for the upstream path once the route's prefix is stripped (empty -> "/")."""
    return f"path,regsub(^{path.lstrip('~')},/),regsub(^//,/)"


RESOLVERS = "dns"  # the `resolvers` section the replica servers use (haproxy.resolvers_section)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def upstream_server(name: str, url: str, replicas: int = 0) -> str:
    """One `server` line, resolved once at start; with replicas, a `server-template` of that many slots that the
    resolvers keep filled with every address the name has (Compose DNS answers a scaled service's name with all
    its replicas), so requests are spread across them and a replica added or removed is picked up at run time."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise RenderError(f"upstream {name}: {url!r} is not http://host:port")
    address = f"{parts.hostname}:{parts.port or 80}"
    if replicas <= 0 or _is_ip(parts.hostname):  # an address has nothing to resolve
        return f"server {name} {address}"
    # init-addr none: HAProxy starts (its slots in maintenance) even before the service's name resolves.
    return f"server-template {name} {replicas} {address} resolvers {RESOLVERS} resolve-prefer ipv4 init-addr none"


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
    # The methods of the routes on (some of) the same paths: `/docs/` and `/docs` are two routes, one 405 route.
    allow = list(dict.fromkeys(m for r in gw.routes if r.service and not r.termination
                               and set(r.paths) <= set(route.paths) for m in r.methods))
    return json_return(status, body, *([f"Allow {quoted_list(allow)}"] if status == 405 and allow else []))


def termination_rules(gw: Gateway) -> list[str]:
    return ["", "    # request-termination routes (internal surfaces, methods not allowed, everything else).",
            *(f"    {termination(gw, r)} if {{ var(txn.route) -m str {r.name} }}" for r in gw.routes if r.termination)]


def forwarding(gw: Gateway, upstreams: dict[str, str], replicas: int = 0) -> tuple[list[str], list[str]]:
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
            server = upstream_server(name, upstreams[name], replicas)
            backends += ["    retry-on conn-failure empty-response",
                         "    http-request disable-l7-retry unless METH_GET",
                         # A retry goes to another replica (a replica just stopped may still be in DNS).
                         *(["    option redispatch"] if server.startswith("server-template") else []),
                         f"    {server}"]
        else:
            backends.append(f"    {json_return(503, NOT_DEPLOYED)}")
    return rules, backends
