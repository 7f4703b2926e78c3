"""The certificator: a user's token plus the services' credential plus a fresh ed25519 key -> a short certificate
for that user only. Everything else is refused with a clear error."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import requests


def keypair(tmp_path: Path, kind: str = "ed25519") -> tuple[Path, str]:
    path = tmp_path / f"key-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path, (path.parent / f"{path.name}.pub").read_text().strip()


VALID = object()  # stands for the real service credential


def ask(site, public_key: str, user: str | None = "alice", service_token: object = VALID,
        system: str = "cluster", request_id: str = "", token: str = "") -> requests.Response:
    headers = {"X-Request-ID": request_id or f"cert-{uuid.uuid4().hex[:8]}"}
    if token or user:
        headers["Authorization"] = f"Bearer {token or site.token(user)}"
    if service_token is VALID:
        headers["X-Firecrest-Service-Token"] = site.secret("service-token")
    elif service_token:
        headers["X-Firecrest-Service-Token"] = str(service_token)
    return requests.post(f"{site.service_url('certificator')}/certificates",
                         data={"system": system, "public_key": public_key}, headers=headers, timeout=30)


def test_certificate_is_for_the_token_user_only(site, tmp_path):
    path, public = keypair(tmp_path)
    response = ask(site, public, request_id="cert-test-1")
    assert response.status_code == 200, response.text
    cert = response.json()["certificate"]
    (tmp_path / f"{path.name}-cert.pub").write_text(cert + "\n")
    info = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / f"{path.name}-cert.pub")],
                          capture_output=True, text=True, check=True).stdout
    assert 'Key ID: "alice@cert-test-1"' in info
    principals = info.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["alice"]
    assert "Extensions: (none)" in info  # no pty, no forwarding of any kind, no user rc
    valid = info.split("Valid: from ")[1].split("\n")[0]
    start, end = (p.strip() for p in valid.split(" to "))
    from datetime import datetime
    span = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    assert span.total_seconds() <= 6 * 60  # -1m backdating + 5 minutes

    key = paramiko.Ed25519Key.from_private_key_file(str(path))
    key.load_certificate(cert)
    client = site.connect("alice", key)
    assert site.run(client, "id -un").stdout.strip() == "alice"
    client.close()
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("bob", key)


@pytest.mark.parametrize(
    ("service_token", "status"),
    [(None, 403), ("wrong", 403), ("", 403), ("valid' OR '1'='1", 403)],
)
def test_service_credential_is_required(site, tmp_path, service_token, status):
    _, public = keypair(tmp_path)
    response = ask(site, public, service_token=service_token)
    assert response.status_code == status
    assert response.json() == {"description": "A service credential is required"}


def test_user_token_is_required(site, tmp_path):
    _, public = keypair(tmp_path)
    response = ask(site, public, user=None)
    assert response.status_code == 401
    assert response.json() == {"description": "No Auth Header given"}


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_other_key_types_are_refused(site, tmp_path, kind):
    _, public = keypair(tmp_path, kind)
    response = ask(site, public)
    assert response.status_code == 400
    assert "is not allowed" in response.json()["description"]


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "garbage",
        "ssh-ed25519 not-base64!!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",  # right type, truncated key
        "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQ==",  # an RSA blob under an ed25519 label
        "ssh-ed25519 AAAA\nssh-ed25519 BBBB",
        "-O permit-pty ssh-ed25519 AAAA",
        "ssh-ed25519 " + "A" * 4096,
    ],
)
def test_malformed_keys_are_refused(site, public_key):
    response = ask(site, public_key)
    assert response.status_code == 400
    assert "description" in response.json()


def test_unknown_system_is_refused(site, tmp_path):
    _, public = keypair(tmp_path)
    assert ask(site, public, system="elsewhere").status_code == 400


def test_key_material_is_never_logged(site, tmp_path):
    _, public = keypair(tmp_path)
    cert = ask(site, public).json()["certificate"]
    log = (site.dir / "log" / "certificator.log").read_text()
    assert public.split()[1] not in log
    assert cert.split()[1] not in log


# --- principals: cluster users only ---------------------------------------------------------------------------------

NOT_USERS = ["root", "swift", "mysql", "redis", "munge", "slurm", "firecrest", "keycloak", "nobody", "daemon",
             "no-such-user"]


class Realm:
    """The realm's admin API (the site's Keycloak admin account): a realm that maps a client to any unix name is
    exactly what the certificator must not trust blindly."""

    def __init__(self, site) -> None:
        self.base = f"{site.env['KEYCLOAK_URL']}/admin/realms/{site.env['KEYCLOAK_REALM']}"
        self.token_url = site.env["FIRECREST_TOKEN_URL"]
        response = requests.post(
            f"{site.env['KEYCLOAK_URL']}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                  "password": site.secret("keycloak-admin")}, timeout=30)
        response.raise_for_status()
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        self.created: list[str] = []

    def client_for(self, unix_username: str) -> str:
        """A fresh confidential client whose service-account tokens say `unix_username`; returns a token of it."""
        client_id, secret = f"test-cert-{unix_username}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex

        def claim(name: str, value: str) -> dict:
            return {"name": name, "protocol": "openid-connect", "protocolMapper": "oidc-hardcoded-claim-mapper",
                    "config": {"claim.name": name, "claim.value": value, "jsonType.label": "String",
                               "access.token.claim": "true"}}

        audience = {"name": "aud", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                    "config": {"included.custom.audience": "firecrest", "access.token.claim": "true"}}
        # Its tokens name a registered application (azp) and its scopes: the refusal must come from the
        # certificator's own check of the unix name, not from the site's list of applications or scopes.
        response = requests.post(f"{self.base}/clients", headers=self.headers, timeout=30, json={
            "clientId": client_id, "enabled": True, "protocol": "openid-connect", "publicClient": False,
            "secret": secret, "serviceAccountsEnabled": True, "standardFlowEnabled": False,
            "protocolMappers": [claim("unix_username", unix_username), claim("azp", "firecrest-alice"),
                                audience],
            "defaultClientScopes": ["basic", "firecrest-read", "firecrest-files"]})
        assert response.status_code == 201, response.text
        self.created.append(response.headers["Location"].rsplit("/", 1)[1])
        token = requests.post(self.token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                              timeout=30)
        token.raise_for_status()
        return token.json()["access_token"]

    def remove(self) -> None:
        for uid in self.created:
            requests.delete(f"{self.base}/clients/{uid}", headers=self.headers, timeout=30)


@pytest.fixture(scope="module")
def not_users(site) -> Iterator[dict[str, str]]:
    """name -> a real realm token whose unix_username is that name."""
    realm = Realm(site)
    try:
        yield {name: realm.client_for(name) for name in NOT_USERS}
    finally:
        realm.remove()


@pytest.mark.parametrize("name", NOT_USERS)
def test_no_certificate_for_root_service_accounts_or_unknown_names(site, tmp_path, not_users, name):
    _, public = keypair(tmp_path)
    for route in ("/certificates", "/certificates/resume"):
        response = requests.post(f"{site.service_url('certificator')}{route}", timeout=30,
                                 data={"system": "cluster", "public_key": public},
                                 headers={"Authorization": f"Bearer {not_users[name]}",
                                          "X-Firecrest-Service-Token": site.secret("service-token")})
        assert response.status_code == 403, (route, response.text)
        assert response.json()["description"].startswith(f"No certificate for '{name}': not a user of this cluster")
        assert "certificate" not in response.json()


def test_a_root_token_through_the_api_gets_403_and_runs_nothing(site, not_users):
    """The whole path: a token the realm issued for root reaches a service, which gets no certificate."""
    rid = f"root-api-{uuid.uuid4().hex[:8]}"
    response = requests.get(f"{site.env['FIRECREST_URL']}/utilities/whoami", timeout=30,
                            headers={"Authorization": f"Bearer {not_users['root']}", "X-Machine-Name": "cluster",
                                     "X-Request-ID": rid})
    assert response.status_code == 403, response.text
    assert "not a user of this cluster" in response.text
    assert site.audit_records({rid}) == []


def test_cluster_users_still_get_theirs(site, tmp_path):
    for user in ("alice", "bob"):
        _, public = keypair(tmp_path)
        assert ask(site, public, user=user).status_code == 200
