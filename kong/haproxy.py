"""The whole HAProxy 2.6 configuration: global and defaults, one frontend whose rules run in order, the backends."""

from __future__ import annotations

from pathlib import Path

from kong.errors import RenderError
from kong.haproxy_auth import application_rules, jwt_rules
from kong.haproxy_limits import per_user_limits, source_limit_and_path_rules
from kong.haproxy_routes import RESOLVERS, cors_rules, forwarding, routing_rules, termination_rules
from kong.kong_yml import Gateway

ERRORS = {
    400: "Bad request",
    408: "Request timeout",
    # A service that died with the request in flight (see the note on keep-alive below).
    502: "The service ended without answering this request; it may or may not have been carried out: look before "
         "repeating a change",
    503: "The service is unavailable; nothing was done: try again later",
    504: "Gateway timeout",
}
DEFAULT_TIMEOUTS = {"connect": "5s", "client": "120s", "server": "120s", "http-request": "10s",
                    "http-keep-alive": "10s", "queue": "30s"}


def render(gw: Gateway, bind: str, port: int, upstreams: dict[str, str], keys: list[Path], replicas: int = 0) -> str:
    """The whole HAProxy configuration; the frontend's rules run in the order they are listed here.

    replicas > 0: upstreams given by name are `server-template`s of that many slots, kept filled from DNS.
    """
    if not keys:
        raise RenderError("no RS256 signing key: every token would be rejected")
    rate_rules, rate_tables = per_user_limits(gw)
    frontend = [
        *header_rules(gw),
        *source_limit_and_path_rules(gw),
        *routing_rules(gw),
        *cors_rules(gw.routes),
        *termination_rules(gw),
        "", *jwt_rules(gw, keys),
        "", *application_rules(gw),
        "", "    # The verified identity, for the services and the log.",
        "    http-request set-var(txn.user) var(txn.sub)",
        "    http-request set-header X-Auth-Sub %[var(txn.sub)]",
        "    http-request set-header X-Auth-Client %[var(txn.azp)]",
        *rate_rules,
    ]
    forward, backends = forwarding(gw, upstreams, replicas)
    resolvers = resolvers_section() if any(f"resolvers {RESOLVERS} " in line for line in backends) else []
    return "\n".join([*preamble(gw, bind, port), *frontend, *forward, *backends, *rate_tables, *resolvers]) + "\n"


def resolvers_section() -> list[str]:
    """The container's own resolver (/etc/resolv.conf: aardvark-dns under podman, 127.0.0.11 under Docker), asked
    again every few seconds, so the replica slots follow `--scale`."""
    return [
        "",
        f"resolvers {RESOLVERS}",
        "    parse-resolv-conf",
        "    accepted_payload_size 8192",  # room for many replicas' A records in one UDP answer
        "    timeout resolve 2s",
        "    hold valid 10s",
    ]


def preamble(gw: Gateway, bind: str, port: int) -> list[str]:
    timeouts = {**DEFAULT_TIMEOUTS, **gw.timeouts}
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
        # A new connection to the service for each request: a request that comes after its service died then
        # always gets the 503 below. Over a kept-alive one it could meet the dead service's connection before
        # HAProxy saw it close, and a keep-alive client would get no answer at all (HAProxy closes the client's
        # connection then, by design, so that the client may retry: few do, and never a POST). A request in flight
        # at the moment its service dies still gets the 502 below on a client's first request, and no answer on
        # a later one of a kept-alive client connection. Costs 5-8 % of req/s against keep-alive to the services.
        "    option http-server-close",
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
