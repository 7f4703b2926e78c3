"""kong/haproxy*.py: the HAProxy lines rendered from kong.yml (no site needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_kong_yml import ISSUER, gateway, kong_yml, plugin

from kong.errors import RenderError
from kong.haproxy import render

KEYS = [Path("/keys/0-a.pem"), Path("/keys/1-b.pem")]


def lines(config: dict | None = None, upstreams: dict[str, str] | None = None) -> list[str]:
    text = render(gateway(config), "127.0.0.1", 8000, upstreams or {}, KEYS)
    return [line.strip() for line in text.splitlines()]


def test_routes_render_to_path_method_and_strip_rules():
    out = lines()
    cond = "!route_set { path_beg /utilities/ } { method GET POST PUT DELETE OPTIONS }"
    assert f"http-request set-var(txn.upath) path,regsub(^/utilities/,/),regsub(^//,/) if {cond}" in out
    assert f"http-request set-var(txn.route) str(utilities) if {cond}" in out
    exact = "!route_set { path_reg ^/tasks$ } { method GET OPTIONS }"
    assert f"http-request set-var(txn.upath) path,regsub(^/tasks$,/),regsub(^//,/) if {exact}" in out
    assert "http-request set-path %[var(txn.upath)] if { var(txn.upath) -m found }" in out
    assert "use_backend svc_utilities if { var(txn.route) -m str utilities }" in out


def test_internal_paths_and_everything_else_end_in_404():
    out = lines()
    everything = "{ method GET HEAD POST PUT PATCH DELETE OPTIONS TRACE CONNECT }"
    internal = "http-request set-var(txn.route) str(internal) if !route_set"
    assert f"{internal} {{ path_beg /certificator }} {everything}" in out
    assert f"{internal} {{ path_reg ^/tasks/+tasks?list }} {everything}" in out
    not_found = "http-request return status 404 content-type application/json string '{\"description\":\"Not found\"}'"
    assert f"{not_found} if {{ var(txn.route) -m str internal }}" in out
    assert f"{not_found} if {{ var(txn.route) -m str not-found }}" in out
    assert not any("certificator" in line for line in out if "use_backend" in line or line.startswith("backend"))


def test_method_not_allowed_is_405_with_allow():
    assert ("http-request return status 405 content-type application/json string '{\"description\":\"Method not "
            "allowed\"}' hdr Allow \"GET, OPTIONS\" if { var(txn.route) -m str tasks-method-not-allowed }") in lines()


def test_terminations_come_before_the_jwt_check_and_forwarding_after_it():
    out = lines()
    first_jwt = out.index("http-request set-var(txn.bearer) http_auth_bearer")
    terminations = [i for i, line in enumerate(out) if "return status 404" in line or "return status 405" in line]
    assert max(terminations) < first_jwt
    assert out.index("http-request set-header X-Auth-Sub %[var(txn.sub)]") > first_jwt
    assert out.index("http-request track-sc0 src") < first_jwt


def test_jwt_checks_pin_rs256_and_use_every_key():
    out = lines()
    for key in KEYS:
        assert f'acl jwt_sig_ok var(txn.bearer),jwt_verify("RS256","{key}") -m int 1' in out
    assert "acl jwt_alg_ok var(txn.alg) -m str RS256" in out
    assert f"acl jwt_iss_ok var(txn.iss) -m str {ISSUER}" in out
    assert "acl jwt_typ_ok var(txn.typ) -m str Bearer" in out
    aud = [line for line in out if line.startswith("acl jwt_aud_ok")]
    assert aud[0] == "acl jwt_aud_ok var(txn.bearer),jwt_payload_query('$.aud') -m str firecrest"
    assert len(aud) == 1 + 5 and aud[-1].endswith("jwt_payload_query('$.aud[4]') -m str firecrest")
    deny = next(line for line in out if " unless jwt_one_header" in line)
    assert deny.startswith("http-request return status 401 content-type application/json string "
                           "'{\"message\":\"Unauthorized\"}' hdr WWW-Authenticate Bearer")
    # The RSA work comes last; public routes (the API documentation) need no token.
    assert deny.endswith("jwt_has_sub jwt_has_exp !jwt_expired jwt_sig_ok || public_route")
    assert any(line.endswith("if jwt_not_yet") for line in out)


def test_public_routes_read_no_token_and_need_none():
    out = lines(upstreams={"apidocs": "http://127.0.0.1:5108"})
    assert "acl public_route var(txn.route) -m str apidocs apidocs-root apidocs-method-not-allowed" in out
    unset = out.index("http-request unset-var(txn.bearer) if public_route")
    first_claim = next(i for i, line in enumerate(out) if "var(txn.bearer),jwt_" in line)
    assert out.index("http-request set-var(txn.bearer) http_auth_bearer") < unset < first_claim
    assert [line for line in out if line.endswith("|| public_route")] == [
        line for line in out if " unless jwt_one_header" in line or " unless app_registered" in line]
    assert "use_backend svc_apidocs if { var(txn.route) -m str apidocs apidocs-root }" in out
    assert ('http-request return status 405 content-type application/json string \'{"description":"Method not '
            'allowed"}\' hdr Allow "GET, HEAD" if { var(txn.route) -m str apidocs-method-not-allowed }') in out
    docs = "!route_set { path_beg /docs/ } { method GET HEAD }"
    assert f"http-request set-var(txn.upath) path,regsub(^/docs/,/),regsub(^//,/) if {docs}" in out
    assert not any("regsub(^/docs$" in line for line in out)  # /docs reaches the service as /docs


def test_without_public_routes_every_route_needs_a_token():
    config = kong_yml()
    config["services"] = [s for s in config["services"] if s["name"] != "apidocs"]
    out = lines(config)
    assert not any("public_route" in line for line in out)
    assert next(line for line in out if " unless jwt_one_header" in line).endswith("jwt_sig_ok")


def test_identity_headers_are_dropped_then_set_from_the_token():
    out = lines()
    dropped = next(i for i, line in enumerate(out) if line.startswith("http-request del-header X-Auth- -m beg"))
    assert dropped < out.index("http-request set-header X-Auth-Sub %[var(txn.sub)]")


def test_request_id_is_validated_and_echoed():
    out = lines()
    assert "acl rid_ok_value req.fhdr(X-Request-ID) -m reg ^[A-Za-z0-9._-]{1,64}$" in out
    assert "http-request set-var(txn.rid) uuid() unless { var(txn.rid) -m found }" in out
    assert "http-after-response set-header X-Request-ID %[var(txn.rid)]" in out
    assert any("rid=%[var(txn.rid)]" in line for line in out if line.startswith("log-format"))


def test_the_log_has_the_path_but_never_the_query_or_headers():
    """A `?jwt=` token or a signature in a query string, or an Authorization header, must never reach the log."""
    [log_format] = [line for line in lines() if line.startswith("log-format")]
    assert "%HM %{+Q}HPO " in log_format
    fields = re.findall(r"%(?:\{[^}]*\})?(\[[^\]]*\]|[A-Za-z]+)", log_format)
    assert "HPO" in fields
    for field in fields:  # %r: the request line; HU: the URI; HQ: the query; hr/hs: captured headers
        assert field not in ("r", "HU", "HQ", "hr", "hs", "hrl", "hsl"), field
        assert not re.search(r"query|url|hdr|capture", field), field
    assert not [line for line in lines() if line.startswith(("capture ", "http-request capture", "declare capture"))]


def test_rate_limits_come_from_kong_yml():
    config = kong_yml()
    plugin(config, "rate-limiting")["config"].update(second=5, minute=100)
    config["_ignore"][0]["local_gateway"]["per_source"] = {"period_seconds": 10, "limit": 77}
    out = lines(config)
    # Looked up before the request is counted: refused requests do not use up the window (as in Kong).
    second = next(i for i, line in enumerate(out) if line.endswith(
        "hdr Retry-After 1 if { var(txn.sub),table_http_req_rate(rate_sub_1s) ge 5 }"))
    assert out[second + 1] == "http-request track-sc1 var(txn.sub) table rate_sub_1s"
    minute = next(i for i, line in enumerate(out) if line.endswith(
        "hdr Retry-After 60 if { var(txn.sub),table_http_req_rate(rate_sub_60s) ge 100 }"))
    assert out[minute + 1] == "http-request track-sc2 var(txn.sub) table rate_sub_60s"
    assert "stick-table type string len 128 size 100k expire 120s store http_req_rate(60s)" in out
    source = next(i for i, line in enumerate(out) if line.endswith(
        "hdr Retry-After 10 if { src,table_http_req_rate(firecrest) ge 77 }"))
    assert out[source + 1] == "http-request track-sc0 src"


def test_upstreams_given_are_servers_and_the_others_503():
    out = lines(upstreams={"utilities": "http://127.0.0.1:5104"})
    utilities = out.index("backend svc_utilities")
    assert "server utilities 127.0.0.1:5104" in out[utilities:utilities + 4]
    compute = out.index("backend svc_compute")
    assert out[compute + 1] == ("http-request return status 503 content-type application/json string "
                                "'{\"description\":\"Service not deployed\"}'")


def test_cors_preflight_and_headers():
    out = lines()
    preflight = next(line for line in out if line.endswith("if METH_OPTIONS { var(txn.route) -m str utilities }"))
    assert preflight.startswith("http-request return status 204 hdr Access-Control-Allow-Origin \"*\"")
    assert 'Access-Control-Allow-Methods "GET, POST, PUT, DELETE, OPTIONS"' in preflight
    assert ('Access-Control-Allow-Headers "Accept, X-Machine-Name, X-Task-Id, Authorization, Content-Type, '
            'X-Request-ID, Idempotency-Key"') in preflight
    assert ('http-after-response set-header Access-Control-Allow-Origin "*" if '
            '{ var(txn.route) -m str status utilities compute compute-seed-jobs storage tasks }') in out


def test_output_says_it_is_generated():
    text = render(gateway(), "127.0.0.1", 8000, {}, KEYS)
    assert text.startswith("# Generated from kong/kong.yml by kong/render.py -- do not edit")
    assert "bind 127.0.0.1:8000" in text and "${" not in text



def test_refuses_a_non_http_upstream_and_no_keys():
    with pytest.raises(RenderError, match="http://host:port"):
        render(gateway(), "127.0.0.1", 8000, {"status": "https://x:1"}, KEYS)
    with pytest.raises(RenderError, match="signing key"):
        render(gateway(), "127.0.0.1", 8000, {}, [])


def test_replicas_are_server_templates_filled_from_dns():
    upstreams = {"utilities": "http://utilities:8000", "status": "http://10.0.0.5:8000"}
    text = render(gateway(), "127.0.0.1", 8000, upstreams, KEYS, replicas=4)
    out = [line.strip() for line in text.splitlines()]
    utilities = out.index("backend svc_utilities")
    assert "option redispatch" in out[utilities:utilities + 6]
    assert ("server-template utilities 4 utilities:8000 resolvers dns resolve-prefer ipv4 init-addr none"
            in out[utilities:utilities + 6])
    assert "server status 10.0.0.5:8000" in out  # an address has nothing to resolve
    assert out[out.index("resolvers dns") + 1] == "parse-resolv-conf"


def test_without_replicas_nothing_is_resolved_at_run_time():
    text = render(gateway(), "127.0.0.1", 8000, {"utilities": "http://utilities:8000"}, KEYS)
    assert "server utilities utilities:8000" in text
    assert "resolvers" not in text and "redispatch" not in text
