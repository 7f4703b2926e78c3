"""Keycloak's authorization code flow with PKCE for a public client: the pure parts (no Flask).

The portal never sees a password: the browser signs in at Keycloak, the portal gets a code and swaps it (with the
PKCE verifier only it knows) for tokens, which stay in the server-side session.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

REFRESH_MARGIN = 30.0  # seconds: a token this close to its end is refreshed before a call, not during it
HTTP_TIMEOUT = 15.0


class SignInRequired(Exception):
    """No usable tokens (never signed in, the Keycloak session ended, the refresh token expired)."""


class SignInFailed(Exception):
    """The callback does not complete a sign-in this session started (bad state, nonce, code or ID token)."""


@dataclass(frozen=True)
class Provider:
    """The realm's endpoints and the portal's client id."""

    keycloak_url: str
    realm: str
    client_id: str

    @classmethod
    def from_env(cls) -> Provider:
        return cls(os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8180").rstrip("/"),
                   os.environ.get("KEYCLOAK_REALM", "firecrest"),
                   os.environ.get("FIRECREST_PORTAL_CLIENT_ID", "firecrest-portal"))

    @property
    def issuer(self) -> str:
        return f"{self.keycloak_url}/realms/{self.realm}"

    def endpoint(self, name: str) -> str:
        """auth, token, logout or certs."""
        return f"{self.issuer}/protocol/openid-connect/{name}"


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636: 43-128 unreserved characters; challenge = b64url(sha256(verifier))."""
    verifier = secrets.token_urlsafe(64)  # 86 characters
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start(provider: Provider, redirect_uri: str) -> tuple[str, dict[str, str]]:
    """The URL to send the browser to, and what the session keeps until the callback."""
    verifier, challenge = pkce_pair()
    pending = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32), "verifier": verifier,
               "redirect_uri": redirect_uri}
    query = urlencode({"client_id": provider.client_id, "response_type": "code", "scope": "openid",
                       "redirect_uri": redirect_uri, "state": pending["state"], "nonce": pending["nonce"],
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    return f"{provider.endpoint('auth')}?{query}", pending


def needs_refresh(tokens: dict[str, Any], now: float | None = None) -> bool:
    """Whether the access token ends within REFRESH_MARGIN (so it is refreshed before a call uses it)."""
    now = time.time() if now is None else now
    return float(tokens.get("expires_at", 0)) - now < REFRESH_MARGIN


def _token_call(provider: Provider, data: dict[str, str]) -> dict[str, Any]:
    try:
        r = requests.post(provider.endpoint("token"), data={"client_id": provider.client_id, **data},
                          timeout=HTTP_TIMEOUT)
    except requests.RequestException as e:
        raise SignInFailed(f"Keycloak did not answer ({type(e).__name__})") from e
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        raise SignInFailed(f"Keycloak refused the token request ({r.status_code}: {error or r.reason})")
    return body


def _kept(body: dict[str, Any], now: float) -> dict[str, Any]:
    return {"access_token": body["access_token"], "refresh_token": body.get("refresh_token", ""),
            "id_token": body.get("id_token", ""), "expires_at": now + float(body.get("expires_in", 60))}


def exchange(provider: Provider, pending: dict[str, str], code: str, state: str,
             jwks: jwt.PyJWKClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The callback's code swapped for tokens, once state, nonce and the ID token check out: (tokens, claims)."""
    if not pending or not state or not secrets.compare_digest(state, pending.get("state", "")):
        raise SignInFailed("the sign-in's state does not match this session (start again)")
    if not code:
        raise SignInFailed("Keycloak sent no code")
    now = time.time()
    body = _token_call(provider, {"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": pending["redirect_uri"], "code_verifier": pending["verifier"]})
    claims = validate_id_token(provider, body.get("id_token", ""), jwks)
    if not secrets.compare_digest(str(claims.get("nonce", "")), pending["nonce"]):
        raise SignInFailed("the ID token's nonce does not match this sign-in")
    return _kept(body, now), claims


def refresh(provider: Provider, tokens: dict[str, Any], jwks: jwt.PyJWKClient) -> dict[str, Any]:
    """New tokens from the refresh token; SignInRequired when Keycloak no longer honours it."""
    if not tokens.get("refresh_token"):
        raise SignInRequired("no refresh token")
    now = time.time()
    try:
        body = _token_call(provider, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    except SignInFailed as e:
        raise SignInRequired(str(e)) from e
    kept = _kept(body, now)
    if kept["id_token"]:
        validate_id_token(provider, kept["id_token"], jwks)
    else:
        kept["id_token"] = tokens.get("id_token", "")
    return kept


def validate_id_token(provider: Provider, id_token: str, jwks: jwt.PyJWKClient) -> dict[str, Any]:
    """The ID token's claims: RS256 signature by the realm's key, iss, aud (this client), exp."""
    try:
        key = jwks.get_signing_key_from_jwt(id_token)
        return jwt.decode(id_token, key.key, algorithms=["RS256"], audience=provider.client_id,
                          issuer=provider.issuer, options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except jwt.PyJWTError as e:
        raise SignInFailed(f"the ID token is not valid ({e})") from e


def logout_url(provider: Provider, id_token: str, post_logout_redirect_uri: str) -> str:
    """RP-initiated logout: Keycloak ends its session for this browser, then sends it back to the portal."""
    query = {"client_id": provider.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        query["id_token_hint"] = id_token
    return f"{provider.endpoint('logout')}?{urlencode(query)}"
