"""Every service validates the token itself: forged tokens sent straight to a service (past the gateway) get
401 and nothing runs on the cluster."""

from __future__ import annotations

import uuid

import forged_tokens
import pytest
import requests
from cryptography.hazmat.primitives import serialization

# (service, method, path): one route of each service that would run a command on the cluster.
TARGETS = [("utilities", "GET", "/whoami"), ("status", "GET", "/systems/cluster"),
           ("certificator", "POST", "/certificates")]


@pytest.fixture(scope="module")
def realm_pem(site) -> str:
    import jwt

    issuer = f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}"
    token = site.token("alice")
    key = jwt.PyJWKClient(f"{issuer}/protocol/openid-connect/certs").get_signing_key_from_jwt(token).key
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def send(site, service: str, method: str, path: str, headers: dict[str, str]) -> requests.Response:
    headers = {**headers, "X-Machine-Name": "cluster"}
    if service == "certificator":
        headers["X-Firecrest-Service-Token"] = site.secret("service-token")
    return requests.request(method, site.service_url(service) + path, headers=headers, timeout=30,
                            data={"system": "cluster", "public_key": "ssh-ed25519 AAAA"})


@pytest.mark.parametrize(("service", "method", "path"), TARGETS)
def test_forged_tokens_get_401_and_run_nothing(site, realm_pem, service, method, path):
    tokens = forged_tokens.forged(site.token("alice"), realm_pem)
    assert len(tokens) >= 10
    sent = set()
    for name, token in tokens.items():
        rid = f"forged-{service}-{name}-{uuid.uuid4().hex[:6]}"[:64]
        sent.add(rid)
        response = send(site, service, method, path, {"Authorization": f"Bearer {token}", "X-Request-ID": rid})
        assert response.status_code == 401, (name, response.text)
        assert set(response.json()) == {"description"}, name
    assert site.audit_records(sent) == []


@pytest.mark.parametrize(("service", "method", "path"), TARGETS)
def test_hostile_headers_get_401(site, service, method, path):
    for name, headers in forged_tokens.hostile_headers(site.token("alice")).items():
        response = send(site, service, method, path, headers)
        assert response.status_code == 401, name
