"""Keycloak issues tokens that act as the unix user, for the gateway's audience."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest
import requests


def token(site, user: str, secret: str | None = None) -> requests.Response:
    return requests.post(
        site.env["FIRECREST_TOKEN_URL"],
        data={"grant_type": "client_credentials"},
        auth=(site.env[f"FIRECREST_CLIENT_ID_{user.upper()}"],
              secret or site.env[f"FIRECREST_CLIENT_SECRET_{user.upper()}"]),
        timeout=30,
    )


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_client_credentials_token_acts_as_the_user(site, user):
    response = token(site, user)
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    issuer = f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}"
    key = jwt.PyJWKClient(f"{issuer}/protocol/openid-connect/certs").get_signing_key_from_jwt(access)
    claims = jwt.decode(access, key.key, algorithms=["RS256"], audience="firecrest", issuer=issuer,
                        options={"require": ["exp", "iat", "sub"]})
    assert claims["unix_username"] == user
    assert claims["exp"] - claims["iat"] == 300
    # The upstream FirecREST convention for service accounts, which pyfirecrest reads too.
    assert "firecrest-sa" in claims["realm_access"]["roles"]
    assert claims["resource_access"][claims["azp"]]["roles"] == [user]


def test_wrong_secret_gets_no_token(site):
    response = token(site, "alice", secret="not-the-secret")
    assert response.status_code == 401
    assert "access_token" not in response.json()


def test_bob_secret_is_not_alice_secret(site):
    assert token(site, "alice", secret=site.env["FIRECREST_CLIENT_SECRET_BOB"]).status_code == 401


def test_portal_client_requires_pkce(site):
    auth = f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}/protocol/openid-connect/auth"
    params = {
        "client_id": site.env["FIRECREST_PORTAL_CLIENT_ID"],
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:5173/callback",
        "scope": "openid",
        "state": "s",
    }
    without = requests.get(auth, params=params, allow_redirects=False, timeout=30)
    assert "code_challenge_method" in without.headers.get("Location", "") + without.text
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 64).digest()).rstrip(b"=").decode()
    with_pkce = requests.get(auth, params={**params, "code_challenge": challenge, "code_challenge_method": "S256"},
                             timeout=30)
    assert with_pkce.status_code == 200 and "kc-form-login" in with_pkce.text
