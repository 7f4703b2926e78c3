"""The status and utilities services, called directly (the gateway is tested in test_gateway.py)."""

from __future__ import annotations

import uuid

import pytest
import requests


def get(site, service: str, path: str, user: str | None = "alice", machine: str | None = "cluster",
        **headers: str) -> requests.Response:
    if user:
        headers["Authorization"] = f"Bearer {site.token(user)}"
    if machine:
        headers["X-Machine-Name"] = machine
    return requests.get(site.service_url(service) + path, headers=headers, timeout=30)


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_whoami_is_the_callers_unix_user(site, user):
    response = get(site, "utilities", "/whoami", user)
    assert response.status_code == 200
    assert response.json() == {"description": "User information", "output": user}


def test_whoami_groups(site):
    output = get(site, "utilities", "/whoami?groups=true").json()["output"]
    assert output["user"]["name"] == "alice" and output["user"]["id"].isdigit()
    assert output["group"]["name"] == "alice"
    assert {"name": "alice", "id": output["group"]["id"]} in output["groups"]


def test_whoami_needs_a_machine(site):
    response = get(site, "utilities", "/whoami", machine=None)
    assert response.status_code == 400
    assert response.json() == {"description": "No machine name given"}


@pytest.mark.parametrize("name", ["nope", "cluster; id", "../cluster", "x" * 4096])
def test_whoami_unknown_machine(site, name):
    response = get(site, "utilities", "/whoami", machine=name)
    assert response.status_code == 400
    assert response.headers["X-Machine-Does-Not-Exist"] == "Machine does not exist"
    assert response.json() == {"description": "Error on whoami operation", "error": "Machine does not exist"}


@pytest.mark.parametrize("service", ["utilities", "status"])
def test_no_token_is_401_and_json(site, service):
    response = get(site, service, "/status" if service == "utilities" else "/systems", user=None)
    assert response.status_code == 401
    assert response.json() == {"description": "No Auth Header given"}


def test_request_id_is_kept_or_made(site):
    assert get(site, "utilities", "/whoami", **{"X-Request-ID": "my-id-1"}).headers["X-Request-ID"] == "my-id-1"
    made = get(site, "utilities", "/whoami", **{"X-Request-ID": "bad id; $(x)"}).headers["X-Request-ID"]
    assert made != "bad id; $(x)" and made.isalnum()


def test_services_list(site):
    body = get(site, "status", "/services", machine=None).json()
    assert body["description"] == "List of services with status and description."
    by_name = {s["service"]: s for s in body["out"]}
    assert by_name["utilities"] == {"service": "utilities", "status": "available", "status_code": 200,
                                    "description": "server up"}
    assert by_name["certificator"]["status"] == "available"
    one = get(site, "status", "/services/utilities", machine=None)
    assert one.status_code == 200 and one.json()["status"] == "available"
    assert get(site, "status", "/services/nope", machine=None).status_code == 404


def test_systems(site):
    body = get(site, "status", "/systems", machine=None).json()
    assert body["description"] == "List of systems with status and description."
    assert body["out"][0] == {"system": "cluster", "status": "available", "description": "System ready"}
    assert [s["system"] for s in body["out"]] == site.systems  # the others: tests/e2e/test_systems.py
    for path in ("/systems/cluster", "/system/cluster"):
        one = get(site, "status", path, machine=None)
        assert one.status_code == 200
        assert one.json() == {"description": "System information",
                              "out": {"system": "cluster", "status": "available", "description": "System ready"}}
    missing = get(site, "status", "/systems/nope", machine=None)
    assert missing.status_code == 404 and missing.json() == {"description": "System does not exist."}


def test_filesystems(site):
    body = get(site, "status", "/filesystems", machine=None).json()
    paths = {fs["path"]: fs for fs in body["out"]["cluster"]}
    assert set(paths) == {"/home", "/scratch"}
    assert all(fs["status"] == "available" and fs["status_code"] == 200 for fs in paths.values())
    one = get(site, "status", "/filesystems/cluster", machine=None).json()
    assert one["description"] == "Filesystem information for system cluster" and len(one["out"]) == 2
    assert get(site, "status", "/filesystems/nope", machine=None).status_code == 404


def test_parameters_report_a_version_pyfirecrest_accepts(site):
    out = get(site, "status", "/parameters", machine=None).json()["out"]
    version = {e["name"]: e["value"] for e in out["general"]}["FIRECREST_VERSION"]
    assert tuple(int(p) for p in version.split(".")) >= (1, 16, 0)
    utilities = {e["name"]: e for e in out["utilities"]}
    assert utilities["UTILITIES_MAX_FILE_SIZE"]["value"] == "5" and utilities["UTILITIES_MAX_FILE_SIZE"]["unit"] == "MB"
    assert out["compute"][0]["value"] == "Slurm"


def test_status_checks_run_as_each_caller(site):
    """The per-user cache never serves alice's check to bob: each one's check runs as them."""
    for user in ("alice", "bob"):
        rid = f"status-{user}-{uuid.uuid4().hex[:8]}"
        headers = {"X-Request-ID": rid, "Cache-Control": "no-cache"}
        assert get(site, "status", "/systems/cluster", user, machine=None, **headers).status_code == 200
        records = site.audit_records({rid})
        assert records and {r["user"] for r in records} == {user}
        assert {r["command"].split()[-2:][0] for r in records} >= {"id", "scontrol"}
