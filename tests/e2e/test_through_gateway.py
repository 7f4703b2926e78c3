"""The first vertical slice as a client sees it: Keycloak token -> gateway -> service -> certificate -> SSH."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]


def call(site, path: str, user: str = "alice", machine: str | None = None, **headers: str) -> requests.Response:
    headers["Authorization"] = f"Bearer {site.token(user)}"
    if machine:
        headers["X-Machine-Name"] = machine
    return requests.get(site.env["FIRECREST_URL"] + path, headers=headers, timeout=30)


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_whoami_is_the_right_unix_user(site, user):
    response = call(site, "/utilities/whoami", user, machine=site.env["FIRECREST_SYSTEM"])
    assert response.status_code == 200
    assert response.json() == {"description": "User information", "output": user}
    assert response.headers["X-Request-ID"]


def test_request_id_reaches_the_cluster_audit_log(site):
    rid = f"e2e-{uuid.uuid4().hex[:12]}"
    response = call(site, "/utilities/whoami", machine="cluster", **{"X-Request-ID": rid})
    assert response.headers["X-Request-ID"] == rid
    [record] = site.audit_records({rid})
    assert record["user"] == "alice" and record["key_id"].startswith("alice@") and record["status"] == 0


def test_unknown_machine_through_the_gateway(site):
    response = call(site, "/utilities/whoami", machine="nope")
    assert response.status_code == 400 and "X-Machine-Does-Not-Exist" in response.headers


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/status/services", "out"),
        ("/status/services/utilities", "status"),
        ("/status/systems", "out"),
        ("/status/systems/cluster", "out"),
        ("/status/system/cluster", "out"),
        ("/status/filesystems", "out"),
        ("/status/filesystems/cluster", "out"),
        ("/status/parameters", "out"),
    ],
)
def test_status_endpoints(site, path, key):
    response = call(site, path, "bob")
    assert response.status_code == 200
    assert key in response.json()


def test_status_of_the_system_says_ready(site):
    assert call(site, "/status/systems/cluster").json()["out"] == {
        "system": "cluster", "status": "available", "description": "System ready"}


def test_readme_example_runs(site):
    result = subprocess.run(["bash", "docs/examples/whoami.sh"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    system, whoami = [line for line in result.stdout.splitlines() if line]
    assert '"status":"available"' in system
    assert '"user":{"name":"alice"' in whoami
