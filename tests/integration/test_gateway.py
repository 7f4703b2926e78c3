"""The HAProxy gateway rendered from kong/kong.yml: real tokens pass, forged ones get 401, internal routes never.

Most tests use the site's gateway (FIRECREST_URL). Those that need a backend that shows what it received, a key the
gateway trusts (to prove each claim check on its own) or tiny limits run a second HAProxy, rendered from a copy of
kong.yml into a temp dir, on a free port in front of a small echo server.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import forged_tokens
import pytest
import requests
import yaml

from kong import render
from kong.haproxy import ERRORS

REPO = Path(__file__).resolve().parents[2]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TEST_KID = "gateway-test-key"


# --- helpers and fixtures -------------------------------------------------------------------------------------------

def issuer(site) -> str:
    return f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw(url: str, method: str, path: str, headers: list[tuple[str, str]] = ()) -> tuple[int, dict[str, str], bytes]:
    """A request with the path exactly as given (requests would normalise it) and repeatable headers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def gateway(site) -> str:
    return site.env["FIRECREST_URL"]


@pytest.fixture(scope="module")
def alice(site) -> str:
    return site.token("alice")


@pytest.fixture(scope="module")
def bob(site) -> str:
    return site.token("bob")


@pytest.fixture(scope="module")
def jwks(site) -> dict:
    return requests.get(f"{issuer(site)}/protocol/openid-connect/certs", timeout=30).json()


@pytest.fixture(scope="module")
def realm_pem(jwks) -> str:
    return next(iter(render.jwks_to_pems(jwks).values()))


@pytest.fixture(scope="module")
def test_key():
    return forged_tokens.fresh_key()


class Echo(BaseHTTPRequestHandler):
    """Answers with what it received: method, path, headers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms per request on loopback (platform notes §7)

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[k.lower(), v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args) -> None:
        pass


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # HAProxy resets idle keep-alive connections when it stops; nothing to report


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = EchoServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"haproxy not listening on {port}: {log.read_text()}")


@pytest.fixture(scope="module")
def test_gateway(site, tmp_path_factory, echo, jwks, test_key) -> Iterator[Callable[..., str]]:
    """Start a second HAProxy from a changed copy of kong.yml; it trusts the realm's keys and `test_key`."""
    procs: list[subprocess.Popen] = []

    def start(change: Callable[[dict], None] = lambda config: None) -> str:
        tmp = tmp_path_factory.mktemp("gateway")
        config = yaml.safe_load((REPO / "kong" / "kong.yml").read_text())
        change(config)
        (tmp / "kong.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        keys = {"keys": [*jwks["keys"], forged_tokens.jwk(test_key, TEST_KID)]}
        (tmp / "jwks.json").write_text(json.dumps(keys))
        port = free_port()
        code = render.main(["--config", str(tmp / "kong.yml"), "--out", str(tmp / "haproxy.cfg"), "--port", str(port),
                            "--issuer", issuer(site), "--audience", "firecrest", "--jwks", str(tmp / "jwks.json"),
                            "--key-dir", str(tmp / "keys"), "--site", str(site.site_file),
                            *(f"--upstream={s}={echo}" for s in ("status", "utilities", "tasks", "apidocs"))])
        assert code == 0
        log = tmp / "haproxy.log"
        with log.open("w") as out:
            proc = subprocess.Popen(["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        wait_port(port, proc, log)
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def set_rate(config: dict, **limits: int) -> None:
    plugin = next(p for p in config["plugins"] if p["name"] == "rate-limiting")
    plugin["config"] = {**plugin["config"], "second": None, **limits}


def seen(response: requests.Response) -> dict:
    """What the echo backend received."""
    body = response.json()
    headers: dict[str, list[str]] = {}
    for name, value in body["headers"]:
        headers.setdefault(name, []).append(value)
    return {**body, "headers": headers}


def assert_unauthorized(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"message": "Unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers.get("X-Request-ID")


# --- the site's gateway ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/status/parameters", "/utilities/whoami", "/tasks", "/tasks/", "/compute/jobs",
                                  "/storage/status"])
def test_real_token_passes(gateway, alice, path):
    response = requests.get(gateway + path, headers={**bearer(alice), "X-Machine-Name": "cluster"}, timeout=60)
    # The service answers (or, for a service not deployed yet, the gateway's 503 after the token was accepted).
    assert response.status_code not in (401, 403, 404, 405, 429), response.text
    assert UUID.match(response.headers["X-Request-ID"])
    if response.status_code == 503:
        assert response.json()["description"] in ("Service not deployed", ERRORS[503])


def test_forged_tokens_get_401(gateway, alice, realm_pem):
    tokens = forged_tokens.forged(alice, realm_pem)
    assert len(tokens) >= 20
    for name, token in tokens.items():
        response = requests.get(f"{gateway}/utilities/whoami", headers=bearer(token), timeout=30)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert_unauthorized(response)


def test_hostile_authorization_headers_get_401(gateway, alice):
    for name, headers in forged_tokens.hostile_headers(alice).items():
        response = requests.get(f"{gateway}/status/parameters", headers=headers, timeout=30)
        assert response.status_code == 401, f"{name}: {response.status_code}"
    status, _, _ = raw(gateway, "GET", "/status/parameters",
                       [("Authorization", f"Bearer {alice}"), ("Authorization", f"Bearer {alice}")])
    assert status == 401
    status, _, _ = raw(gateway, "GET", f"/status/parameters?jwt={alice}")
    assert status == 401


@pytest.mark.parametrize("method,path", [
    ("GET", "/certificator"), ("GET", "/certificator/"), ("GET", "/certificator/?cluster=cluster&addr=x"),
    ("POST", "/certificator/"), ("GET", "/certificator/status"), ("HEAD", "/certificator"),
    ("GET", "/tasks/taskslist"), ("GET", "/tasks/tasklist"), ("GET", "/tasks/taskslist/"), ("GET", "/taskslist"),
    ("PUT", "/tasks/taskslist"), ("GET", "/nope"), ("GET", "/statusx"), ("GET", "/"), ("DELETE", "/"),
])
def test_internal_and_unknown_paths_are_404_even_with_a_valid_token(gateway, alice, method, path):
    response = requests.request(method, gateway + path, headers=bearer(alice), timeout=30)
    assert response.status_code == 404
    if method != "HEAD":
        assert response.json() == {"description": "Not found"}


@pytest.mark.parametrize("path", ["/tasks/%74askslist", "/tasks//taskslist", "/tasks/./taskslist",
                                  "/status/../certificator/", "/utilities/%2e%2e/x", "/tasks/taskslist%2F"])
def test_non_canonical_paths_never_reach_a_service(gateway, alice, path):
    status, headers, body = raw(gateway, "GET", path, [("Authorization", f"Bearer {alice}")])
    assert status in (400, 404), body
    assert json.loads(body) in ({"description": "Invalid path"}, {"description": "Not found"})


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/tasks", "GET, OPTIONS"), ("POST", "/tasks/", "GET, OPTIONS"), ("PUT", "/tasks/abc", "GET, OPTIONS"),
    ("DELETE", "/tasks/abc", "GET, OPTIONS"), ("POST", "/tasks/expire/abc", "GET, OPTIONS"),
    ("DELETE", "/status/systems", "GET, OPTIONS"), ("PATCH", "/utilities/ls", "GET, POST, PUT, DELETE, OPTIONS"),
    ("PUT", "/compute/jobs/1", "GET, POST, DELETE, OPTIONS"), ("DELETE", "/storage/x", "GET, POST, OPTIONS"),
    ("HEAD", "/status/parameters", "GET, OPTIONS"),
])
def test_method_not_allowed_is_405(gateway, alice, method, path, allow):
    response = requests.request(method, gateway + path, headers=bearer(alice), timeout=30)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    if method != "HEAD":
        assert response.json() == {"description": "Method not allowed"}


def test_request_id_is_echoed_when_well_formed_and_replaced_otherwise(gateway, alice, site):
    mine = f"test-{uuid.uuid4()}"
    for path, headers in [("/status/parameters", bearer(alice)), ("/status/parameters", {}), ("/nope", {})]:
        response = requests.get(gateway + path, headers={**headers, "X-Request-ID": mine}, timeout=30)
        assert response.headers["X-Request-ID"] == mine
    for hostile in ["has space", "x" * 65, "a;b", "<script>", "ünï", ""]:
        response = requests.get(f"{gateway}/status/parameters", headers={"X-Request-ID": hostile}, timeout=30)
        assert UUID.match(response.headers["X-Request-ID"]), hostile
    _, headers, _ = raw(gateway, "GET", "/nope", [("X-Request-ID", "one"), ("X-Request-ID", "two")])
    assert UUID.match(headers["x-request-id"])
    log = site.dir / "log" / "haproxy.log"
    deadline = time.monotonic() + 5
    while f"rid={mine} " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"rid={mine} " in log.read_text()


def test_cors_preflight_is_answered_without_a_token(gateway):
    response = requests.options(f"{gateway}/utilities/ls", headers={
        "Origin": "https://portal.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, x-machine-name"}, timeout=30)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, DELETE, OPTIONS"
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Accept", "X-Machine-Name", "X-Task-Id", "Authorization", "Content-Type", "X-Request-ID"} <= allowed
    status = requests.options(f"{gateway}/status/systems", headers={"Origin": "https://portal.example"}, timeout=30)
    assert status.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"


def test_cors_headers_on_answers(gateway, alice):
    for headers in (bearer(alice), {}):
        response = requests.get(f"{gateway}/status/parameters", headers={**headers, "Origin": "https://p.example"},
                                timeout=30)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


# --- a second gateway in front of an echo server --------------------------------------------------------------------

def test_identity_comes_from_the_token_only(test_gateway, alice):
    url = test_gateway()
    spoofed = {"X-Auth-Sub": "root", "X-Auth-Client": "evil", "X-Auth-Username": "root", "x-auth-sub": "root2",
               "X-Forwarded-For": "10.6.6.6"}
    response = requests.get(f"{url}/utilities/whoami?x=1", headers={**bearer(alice), **spoofed}, timeout=30)
    assert response.status_code == 200
    got = seen(response)["headers"]
    claims = forged_tokens.parts(alice)[1]
    assert got["x-auth-sub"] == [claims["sub"]]
    assert got["x-auth-client"] == [claims["azp"]]
    assert "x-auth-username" not in got
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["authorization"] == [f"Bearer {alice}"]  # the services validate the token again


@pytest.mark.parametrize("path,upstream", [
    ("/utilities/whoami?x=1", "/whoami?x=1"), ("/utilities", "/"), ("/utilities/", "/"),
    ("/tasks", "/"), ("/tasks?tasks=a,b", "/?tasks=a,b"), ("/tasks/abc", "/abc"), ("/status/systems/cluster",
                                                                                       "/systems/cluster"),
])
def test_prefix_is_stripped(test_gateway, alice, path, upstream):
    url = test_gateway()
    response = requests.get(url + path, headers={**bearer(alice), "X-Request-ID": "strip-test"}, timeout=30)
    assert response.status_code == 200
    assert seen(response)["path"] == upstream
    assert seen(response)["headers"]["x-request-id"] == ["strip-test"]


def test_each_claim_check_alone_rejects(test_gateway, alice, realm_pem, test_key):
    """Signed with a key the gateway trusts, so only the claim is wrong; the positive controls pass."""
    url = test_gateway()
    claims = forged_tokens.parts(alice)[1]
    good = {
        "resigned": forged_tokens.resign(alice, test_key, TEST_KID),
        "audience_array_with_ours": forged_tokens.resign(alice, test_key, TEST_KID, aud=["account", "firecrest"]),
        "audience_array_ours_last": forged_tokens.resign(alice, test_key, TEST_KID, aud=["a", "b", "c", "firecrest"]),
        "nbf_in_the_past": forged_tokens.resign(alice, test_key, TEST_KID, nbf=int(time.time()) - 60),
    }
    for name, token in good.items():
        response = requests.get(f"{url}/status/parameters", headers=bearer(token), timeout=30)
        assert response.status_code == 200, name
        assert seen(response)["headers"]["x-auth-sub"] == [claims["sub"]]
    for name, token in forged_tokens.forged(alice, realm_pem, key=test_key, kid=TEST_KID).items():
        response = requests.get(f"{url}/status/parameters", headers=bearer(token), timeout=30)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"


def test_applications_and_scopes_are_checked_on_signed_claims(test_gateway, alice, test_key):
    """Signed with a key the gateway trusts: the application (azp) must be one the site file registers, and the
    scope must be a whole word of the claim (a longer name, another case or a JSON array is not the scope)."""
    url = test_gateway()

    def code(method: str, path: str, **changes: object) -> tuple[int, str]:
        token = forged_tokens.resign(alice, test_key, TEST_KID, **changes)
        response = requests.request(method, f"{url}{path}", headers=bearer(token), timeout=30)
        return response.status_code, response.json().get("description", "") if response.status_code == 403 else ""

    assert code("GET", "/utilities/whoami", scope="profile firecrest-read")[0] == 200
    assert code("POST", "/utilities/mkdir", scope="firecrest-files")[0] == 200
    for azp in ("firecrest-alice-unregistered", "FIRECREST-ALICE", "firecrest-alice ", "", None, ["firecrest-alice"]):
        assert code("GET", "/utilities/whoami", azp=azp) == (403, "The token was issued to an application that is not "
                                                                  "registered at this site"), azp
    for scope in ("firecrest-readX", "xfirecrest-read", "FIRECREST-READ", "firecrest-read-all", "firecrest", "",
                  None, ["firecrest-read"], "firecrest-files firecrest-jobs"):
        status, text = code("GET", "/utilities/whoami", scope=scope)
        assert (status, "needs the scope firecrest-read," in text) == (403, True), scope
    assert code("POST", "/utilities/mkdir", scope="firecrest-read firecrest-jobs")[0] == 403
    assert code("GET", "/tasks", scope="firecrest-files")[0] == 403


def test_per_user_rate_limit(test_gateway, alice, bob):
    url = test_gateway(lambda config: set_rate(config, second=5))
    codes = []
    limited = None
    for _ in range(30):
        response = requests.get(f"{url}/status/parameters", headers=bearer(alice), timeout=30)
        codes.append(response.status_code)
        if response.status_code == 429:
            limited = response
    # Refused requests do not count, so the window admits the limit (a sliding estimate: a burst across a second
    # boundary may admit one or two more), and everything else in the burst is refused.
    assert codes[:5] == [200] * 5 and 5 <= codes.count(200) <= 8 and set(codes) == {200, 429}, codes
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"message": "API rate limit exceeded"}
    assert requests.get(f"{url}/status/parameters", headers=bearer(bob), timeout=30).status_code == 200  # per user
    time.sleep(2.1)
    assert requests.get(f"{url}/status/parameters", headers=bearer(alice), timeout=30).status_code == 200


def test_per_source_flood_limit_comes_before_token_checks(test_gateway):
    def tiny(config: dict) -> None:
        config["_ignore"][0]["local_gateway"]["per_source"] = {"period_seconds": 10, "limit": 10}

    url = test_gateway(tiny)
    codes = [requests.get(f"{url}/status/parameters", headers=bearer("garbage"), timeout=30).status_code
             for _ in range(15)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429] * 5
    response = requests.get(f"{url}/status/parameters", timeout=30)
    assert response.status_code == 429 and response.headers["Retry-After"] == "10"
