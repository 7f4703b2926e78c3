"""Registered applications and per-application scopes, through the gateway (native and compose sites).

The site file names the applications whose tokens it accepts (`auth.applications`) and the scope each service's
requests need (`auth.scopes`: reads need firecrest-read; utilities' changes firecrest-files, compute's
firecrest-jobs, storage's firecrest-transfers). `firecrest-alice-scoped` is a registered application whose scopes
are optional, so its token holds only those it asks for; `firecrest-alice-unregistered` is a client of the realm
the site did not register."""

from __future__ import annotations

import uuid

import pytest
import requests

SERVICE = "utilities"  # the `api` fixture: alice on the utilities service
SCOPES = ("firecrest-read", "firecrest-files", "firecrest-jobs", "firecrest-transfers")
SCRIPT = b"#!/bin/bash\n#SBATCH --time=00:01:00\ntrue\n"


def token(site, client: str, scopes: tuple[str, ...] = ()) -> str:
    """A client-credentials token of alice's client `client` (ALICE_SCOPED, ALICE_UNREGISTERED) asking for
    `scopes` (the realm adds its own, such as profile)."""
    asked = {"scope": " ".join(scopes)} if scopes else {}  # Keycloak refuses an empty scope parameter
    credentials = (site.env[f"FIRECREST_CLIENT_ID_{client}"], site.env[f"FIRECREST_CLIENT_SECRET_{client}"])
    reply = requests.post(site.env["FIRECREST_TOKEN_URL"], data={"grant_type": "client_credentials", **asked},
                          auth=credentials, timeout=30)
    reply.raise_for_status()
    return reply.json()["access_token"]


def call(site, tok: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {tok}", "X-Machine-Name": "cluster"}
    return requests.request(method, site.env["FIRECREST_URL"] + path, headers=headers, timeout=30, **kwargs)


def refused_for(reply: requests.Response, scope: str) -> bool:
    return (reply.status_code == 403 and reply.headers["Content-Type"].startswith("application/json")
            and reply.json()["description"] == f"This request needs the scope {scope}, which the application this "
                                                "token was issued to was not granted")


@pytest.fixture
def home(site) -> str:
    return f"/home/alice/t-apps-{uuid.uuid4().hex[:10]}"


def test_the_default_tokens_of_registered_applications_hold_every_scope(site):
    """pyfirecrest's client-credentials tokens (alice's and bob's clients) keep working unchanged."""
    for user in ("alice", "bob"):
        reply = requests.post(site.env["FIRECREST_TOKEN_URL"], data={"grant_type": "client_credentials"}, timeout=30,
                              auth=(site.env[f"FIRECREST_CLIENT_ID_{user.upper()}"],
                                    site.env[f"FIRECREST_CLIENT_SECRET_{user.upper()}"]))
        granted = reply.json()["scope"].split()
        assert set(SCOPES) <= set(granted)
        assert call(site, reply.json()["access_token"], "GET", "/utilities/whoami").json()["output"] == user


def test_a_read_only_token_reads_and_changes_nothing(site, api, home):
    tok = token(site, "ALICE_SCOPED", ("firecrest-read",))
    assert call(site, tok, "GET", "/utilities/ls", params={"targetPath": "/home/alice"}).status_code == 200
    assert call(site, tok, "GET", "/tasks").status_code == 200
    assert call(site, tok, "GET", "/status/systems").status_code == 200
    assert refused_for(call(site, tok, "POST", "/utilities/mkdir", data={"targetPath": home}), "firecrest-files")
    assert refused_for(call(site, tok, "POST", "/compute/jobs/upload", files={"file": ("job.sh", SCRIPT)}),
                       "firecrest-jobs")
    assert refused_for(call(site, tok, "POST", "/storage/xfer-external/upload",
                            data={"targetPath": home, "sourcePath": "x.bin"}), "firecrest-transfers")
    assert refused_for(call(site, tok, "DELETE", "/compute/jobs/1"), "firecrest-jobs")
    assert api.get("/stat", targetPath=home).status_code == 400  # nothing was made


def test_each_scope_opens_only_its_own_changes(site, api, home):
    files = token(site, "ALICE_SCOPED", ("firecrest-files",))
    assert refused_for(call(site, files, "GET", "/utilities/ls", params={"targetPath": "/home/alice"}),
                       "firecrest-read")
    assert call(site, files, "POST", "/utilities/mkdir", data={"targetPath": home}).status_code == 201
    assert call(site, files, "DELETE", "/utilities/rm", data={"targetPath": home}).status_code == 204
    jobs = token(site, "ALICE_SCOPED", ("firecrest-read", "firecrest-jobs"))
    assert refused_for(call(site, jobs, "POST", "/utilities/mkdir", data={"targetPath": home}), "firecrest-files")
    submitted = call(site, jobs, "POST", "/compute/jobs/upload", files={"file": ("job.sh", SCRIPT)})
    assert submitted.status_code == 201, submitted.text
    assert api.wait(submitted.json()["task_id"])["status"] == "200"


def test_a_token_of_an_unregistered_application_is_refused(site):
    tok = token(site, "ALICE_UNREGISTERED")
    for method, path in (("GET", "/utilities/whoami"), ("GET", "/tasks"), ("POST", "/compute/jobs/upload")):
        reply = call(site, tok, method, path)
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json() == {
            "description": "The token was issued to an application that is not registered at this site"}
