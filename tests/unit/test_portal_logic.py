"""The portal's pure logic: PKCE, the sign-in request, when to refresh, safe redirects, paths, API errors."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from portal import oidc, paths
from portal.api import ApiError
from portal.app import create

PROVIDER = oidc.Provider("http://kc.example", "firecrest", "firecrest-portal")


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert oidc.s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_verifier_is_long_unreserved_and_fresh() -> None:
    (v1, c1), (v2, _) = oidc.pkce_pair(), oidc.pkce_pair()
    assert 43 <= len(v1) <= 128 and v1 != v2
    assert set(v1) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    assert c1 == oidc.s256(v1)


def test_start_sends_state_nonce_and_s256_challenge() -> None:
    url, pending = oidc.start(PROVIDER, "http://127.0.0.1:5107/auth/callback")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == \
        "http://kc.example/realms/firecrest/protocol/openid-connect/auth"
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == oidc.s256(pending["verifier"])
    assert pending["verifier"] not in url  # only the challenge travels through the browser
    assert (query["state"], query["nonce"]) == (pending["state"], pending["nonce"])
    assert query["client_id"] == "firecrest-portal" and query["response_type"] == "code"


@pytest.mark.parametrize(("left", "refresh"), [(300, False), (31, False), (29, True), (0, True), (-10, True)])
def test_refresh_when_the_access_token_is_about_to_expire(left: float, refresh: bool) -> None:
    assert oidc.needs_refresh({"expires_at": 1000.0 + left}, now=1000.0) is refresh


def test_no_expiry_known_means_refresh() -> None:
    assert oidc.needs_refresh({}, now=1000.0)


@pytest.mark.parametrize("state", ["", "other", "x" * 43])
def test_callback_with_a_foreign_state_is_refused_before_any_token_call(state: str) -> None:
    pending = {"state": "s" * 43, "nonce": "n", "verifier": "v", "redirect_uri": "http://127.0.0.1/cb"}
    with pytest.raises(oidc.SignInFailed, match="state"):
        oidc.exchange(PROVIDER, pending, "code", state, jwks=None)  # type: ignore[arg-type]


def test_callback_without_a_pending_sign_in_is_refused() -> None:
    with pytest.raises(oidc.SignInFailed, match="state"):
        oidc.exchange(PROVIDER, {}, "code", "", jwks=None)  # type: ignore[arg-type]


def test_logout_url_names_the_id_token_and_the_way_back() -> None:
    query = parse_qs(urlsplit(oidc.logout_url(PROVIDER, "ID.TOKEN", "http://127.0.0.1:5107/auth/signed-out")).query)
    assert query == {"client_id": ["firecrest-portal"], "id_token_hint": ["ID.TOKEN"],
                     "post_logout_redirect_uri": ["http://127.0.0.1:5107/auth/signed-out"]}


@pytest.mark.parametrize(("value", "expected"), [
    ("/files?path=a", "/files?path=a"), ("//evil.example/x", "/systems"), ("https://evil.example/", "/systems"),
    ("/\\evil.example", "/systems"), ("javascript:alert(1)", "/systems"), ("", "/systems"), (None, "/systems"),
])
def test_sign_in_returns_only_to_the_portal(value: str | None, expected: str) -> None:
    from portal.auth import _safe_next

    with create().test_request_context("/"):
        assert _safe_next(value) == expected


@pytest.mark.parametrize(("directory", "name", "joined"), [("", "a", "a"), ("a/b", "c", "a/b/c"), ("/", "etc", "/etc"),
                                                          ("/home/alice/", "x", "/home/alice/x")])
def test_join(directory: str, name: str, joined: str) -> None:
    assert paths.join(directory, name) == joined


@pytest.mark.parametrize(("path", "up"), [("", None), ("/", None), ("a", ""), ("a/b", "a"), ("/home", "/"),
                                          ("/home/alice", "/home")])
def test_parent(path: str, up: str | None) -> None:
    assert paths.parent(path) == up


def test_crumbs() -> None:
    assert paths.crumbs("a/b") == [("~", ""), ("a", "a"), ("b", "a/b")]
    assert paths.crumbs("/home/alice") == [("/", "/"), ("home", "/home"), ("alice", "/home/alice")]
    assert paths.api_path("") == "."


def _response(status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content, r.reason = status, body, "Reason"
    r.headers.update(headers)
    return r


def test_api_error_keeps_description_error_headers_and_retry_after() -> None:
    e = ApiError.from_response(_response(
        400, b'{"description":"Error on ls operation","error":"ls: cannot open directory"}',
        {"x-permission-denied": "ls: cannot open directory '/home/bob': Permission denied", "Retry-After": "7"}))
    assert (e.status, e.description) == (400, "Error on ls operation: ls: cannot open directory")
    assert e.details == [("X-Permission-Denied", "ls: cannot open directory '/home/bob': Permission denied",
                          "permission denied")]
    assert e.retry_after == "7"


def test_api_error_without_json_uses_the_reason() -> None:
    assert ApiError.from_response(_response(502, b"<html>", {})).description == "Reason"


def test_unsafe_request_without_the_csrf_token_is_refused() -> None:
    client = create().test_client()
    assert client.post("/files/mkdir", data={"name": "x"}).status_code == 400
    assert client.post("/auth/logout").status_code == 400


def test_pages_ask_for_a_sign_in() -> None:
    r = create().test_client().get("/files?path=a")
    assert r.status_code == 302 and r.location.startswith("/auth/login?next=")


def _render_error(error: ApiError) -> str:
    from flask import render_template

    with create().test_request_context("/"):
        return render_template("_error.html", error=error)


def test_a_429_says_how_long_to_wait() -> None:
    html = _render_error(ApiError(429, "Too many requests", "7", {"Retry-After": "7"}))
    assert "The API answered 429" in html and "try again in 7 seconds" in html


def test_a_403_shows_the_apis_description() -> None:
    html = _render_error(ApiError(403, "This request needs the scope firecrest-jobs"))
    assert "needs the scope firecrest-jobs" in html and "may not do this" in html


def test_an_error_description_is_text_not_markup() -> None:
    html = _render_error(ApiError(400, "<script>x()</script>", None, {"X-Error": "<b>"}))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html


@pytest.mark.parametrize("machine", ["cluster\r\nX-Injected: 1", "a\nb", "a\x00b"])
def test_a_system_name_with_control_characters_never_becomes_a_header(machine: str) -> None:
    from portal.api import Api

    def no_token() -> str:
        raise AssertionError("no call is made")

    with pytest.raises(ApiError) as e:
        Api("http://127.0.0.1:9", no_token).get("/utilities/ls", machine=machine)
    assert e.value.status == 400
