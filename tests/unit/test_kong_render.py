"""kong/render.py: kong.yml -> HAProxy lines, placeholders, JWKS -> PEM (no site needed)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kong import render

REPO = Path(__file__).resolve().parents[2]

ISSUER = "http://127.0.0.1:8180/realms/firecrest"
VALUES = {"FIRECREST_ISSUER": ISSUER, "FIRECREST_AUDIENCE": "firecrest", "FIRECREST_REALM_PUBLIC_KEY": "PEM"}
KEYS = [Path("/keys/0-a.pem"), Path("/keys/1-b.pem")]


def kong_yml() -> dict:
    return yaml.safe_load((REPO / "kong" / "kong.yml").read_text())


def gateway(config: dict | None = None) -> render.Gateway:
    return render.load(render.fill(config or kong_yml(), VALUES))


def lines(config: dict | None = None, upstreams: dict[str, str] | None = None) -> list[str]:
    text = render.render(gateway(config), "127.0.0.1", 8000, upstreams or {}, KEYS)
    return [line.strip() for line in text.splitlines()]


def plugin(config: dict, name: str) -> dict:
    return next(p for p in config["plugins"] if p["name"] == name)


def jwk_of(key: rsa.RSAPrivateKey, **extra: str) -> dict:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), **extra}


# --- placeholders ---------------------------------------------------------------------------------------------------

def test_fill_replaces_placeholders_inside_strings_only():
    pem = "-----BEGIN PUBLIC KEY-----\nABC\n-----END PUBLIC KEY-----\n"
    tree = {"a": ["x ${FIRECREST_ISSUER} y", {"k": "${FIRECREST_REALM_PUBLIC_KEY}"}], "n": 3, "b": True}
    out = render.fill(tree, {"FIRECREST_ISSUER": ISSUER, "FIRECREST_REALM_PUBLIC_KEY": pem})
    assert out == {"a": [f"x {ISSUER} y", {"k": pem}], "n": 3, "b": True}


def test_unfilled_placeholder_is_an_error():
    with pytest.raises(render.RenderError, match="FIRECREST_NOPE"):
        render.fill({"a": "${FIRECREST_NOPE}"}, VALUES)


def test_kong_yml_has_exactly_the_documented_placeholders():
    text = (REPO / "kong" / "kong.yml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(render.PLACEHOLDER.findall(body)) == set(VALUES)


# --- JWKS -> PEM ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_jwks_rsa_key_becomes_the_same_public_key(bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pems = render.jwks_to_pems({"keys": [jwk_of(key, kid="k1", use="sig", alg="RS256")]})
    loaded = serialization.load_pem_public_key(pems["k1"].encode())
    assert loaded.public_numbers() == key.public_key().public_numbers()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    expected = key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    assert pems["k1"] == expected.decode()


def test_only_rs256_signing_keys_are_taken():
    sig, enc, rs512, nouse = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    jwks = {"keys": [
        jwk_of(sig, kid="sig", use="sig", alg="RS256"),
        jwk_of(enc, kid="enc", use="enc", alg="RSA-OAEP"),  # Keycloak publishes one of these too
        jwk_of(rs512, kid="rs512", use="sig", alg="RS512"),
        jwk_of(nouse, kid="nouse"),  # no use, no alg: a signing key
        {**ec_jwk, "kid": "ec", "use": "sig", "alg": "ES256"},
    ]}
    assert sorted(render.jwks_to_pems(jwks)) == ["nouse", "sig"]


def test_key_files_are_named_safely_and_stale_ones_removed(tmp_path):
    (tmp_path / "old.pem").write_text("x")
    paths = render.write_keys({"../../etc/passwd": "A", "k/2": "B"}, tmp_path)
    assert [p.name for p in paths] == ["0-.._.._etc_passwd.pem", "1-k_2.pem"]
    assert all(p.parent == tmp_path for p in paths) and not (tmp_path / "old.pem").exists()


# --- reading kong.yml -----------------------------------------------------------------------------------------------

def test_routes_methods_and_strip_from_kong_yml():
    gw = gateway()
    routes = {r.name: r for r in gw.routes}
    assert routes["status"].methods == ["GET", "OPTIONS"]
    assert routes["utilities"].methods == ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    assert routes["compute"].methods == ["GET", "POST", "DELETE", "OPTIONS"]
    assert routes["storage"].methods == ["GET", "POST", "OPTIONS"]
    assert routes["tasks"].methods == ["GET", "OPTIONS"]
    assert all(routes[n].strip and routes[n].cors for n in ("status", "utilities", "compute", "storage", "tasks"))
    assert routes["internal"].termination["status_code"] == 404 and routes["internal"].service is None
    assert gw.services == {"status": "http://status:5101", "utilities": "http://utilities:5104",
                           "compute": "http://compute:5106", "storage": "http://storage:5102",
                           "tasks": "http://tasks:5103"}
    assert (gw.issuer, gw.audience, gw.typ, gw.rate) == (ISSUER, "firecrest", "Bearer", {1: 1000})


def test_kong_priority_internal_routes_outrank_the_tasks_route():
    order = [(r.name, p) for r, p in render.match_order(gateway().routes)]
    assert order.index(("internal", "~/tasks/+tasks?list")) < order.index(("tasks", "/tasks/"))
    assert order.index(("tasks", "/tasks/")) < order.index(("tasks-method-not-allowed", "/tasks/"))
    assert order[-1] == ("not-found", "/")


# --- HAProxy lines --------------------------------------------------------------------------------------------------

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
    assert deny.endswith("jwt_has_sub jwt_has_exp !jwt_expired jwt_sig_ok")  # the RSA work comes last
    assert any(line.endswith("if jwt_not_yet") for line in out)


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
            'X-Request-ID"') in preflight
    assert ('http-after-response set-header Access-Control-Allow-Origin "*" if '
            '{ var(txn.route) -m str status utilities compute compute-seed-jobs storage tasks }') in out


def test_output_says_it_is_generated():
    text = render.render(gateway(), "127.0.0.1", 8000, {}, KEYS)
    assert text.startswith("# Generated from kong/kong.yml by kong/render.py -- do not edit")
    assert "bind 127.0.0.1:8000" in text and "${" not in text


# --- what the renderer refuses --------------------------------------------------------------------------------------

def refuses(change, match: str) -> None:
    config = kong_yml()
    change(config)
    with pytest.raises(render.RenderError, match=match):
        gateway(config)


def test_refuses_what_it_cannot_render():
    refuses(lambda c: c["plugins"].append({"name": "oauth2"}), "oauth2")
    refuses(lambda c: c["routes"][0].update(hosts=["a"]), "only paths and methods")
    refuses(lambda c: c["consumers"][0]["jwt_secrets"][0].update(algorithm="HS256"), "RS256")
    refuses(lambda c: plugin(c, "rate-limiting")["config"].update(limit_by="ip"), "limit_by")
    refuses(lambda c: c["services"][0]["routes"][0].update(paths=["/status/ x"]), "path")
    refuses(lambda c: c["services"][0]["routes"][0].update(paths=["~/a,b"]), "path")
    refuses(lambda c: c["_ignore"][0]["local_gateway"].update(audience="a b"), "audience")
    refuses(lambda c: c.pop("_ignore"), "local_gateway")


def test_refuses_a_non_http_upstream_and_no_keys():
    with pytest.raises(render.RenderError, match="http://host:port"):
        render.render(gateway(), "127.0.0.1", 8000, {"status": "https://x:1"}, KEYS)
    with pytest.raises(render.RenderError, match="signing key"):
        render.render(gateway(), "127.0.0.1", 8000, {}, [])


def test_upstreams_from_arguments_win_over_environment():
    services = gateway().services
    env = {"FIRECREST_INTERNAL_STATUS_URL": "http://127.0.0.1:1", "FIRECREST_INTERNAL_CERTIFICATOR_URL": "http://x:2"}
    found = render.upstreams_from(["status=http://127.0.0.1:5101"], services, env)
    assert found == {"status": "http://127.0.0.1:5101"}  # the certificator is never an upstream
    with pytest.raises(render.RenderError, match="certificator"):
        render.upstreams_from(["certificator=http://127.0.0.1:5100"], services, {})


# --- the command line, checked by haproxy itself --------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy is not installed")
def test_command_line_writes_a_valid_haproxy_config(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk_of(key, kid="k", use="sig", alg="RS256")]}))
    code = render.main(["--out", str(tmp_path / "haproxy.cfg"), "--port", "18123", "--issuer", ISSUER,
                        "--audience", "firecrest", "--jwks", str(tmp_path / "jwks.json"),
                        "--key-dir", str(tmp_path / "keys"), "--upstream", "status=http://127.0.0.1:5101",
                        "--kong-out", str(tmp_path / "kong.yml")])
    assert code == 0
    check = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    filled = yaml.safe_load((tmp_path / "kong.yml").read_text())
    secret = filled["consumers"][0]["jwt_secrets"][0]
    assert secret["key"] == ISSUER and secret["rsa_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "${" not in (tmp_path / "kong.yml").read_text()


def test_command_line_fails_clearly_without_issuer(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FIRECREST_ISSUER", raising=False)
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    assert render.main(["--out", str(tmp_path / "x.cfg"), "--audience", "firecrest",
                        "--jwks", str(tmp_path / "jwks.json"), "--key-dir", str(tmp_path)]) == 1
    assert "--issuer" in capsys.readouterr().err


def test_loading_does_not_change_the_parsed_config():
    config = kong_yml()
    before = copy.deepcopy(config)
    gateway(config)
    assert config == before
