"""The certificator: a user's token plus the services' credential plus a fresh ed25519 key -> a short certificate
for that user only. Everything else is refused with a clear error."""

from __future__ import annotations

import subprocess
import uuid
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
        system: str = "cluster", request_id: str = "") -> requests.Response:
    headers = {"X-Request-ID": request_id or f"cert-{uuid.uuid4().hex[:8]}"}
    if user:
        headers["Authorization"] = f"Bearer {site.token(user)}"
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
