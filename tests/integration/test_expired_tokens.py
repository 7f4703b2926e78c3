"""Work that outlives the token it was started with: an upload the user sends after the token expired is still
pulled as the user (the certificator's resume route), and only that route accepts an expired token."""

from __future__ import annotations

import time

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_client import Api
from test_storage import run_command, start_upload

LIFESPAN_S = 10  # the firecrest-alice-short client (deploy/keycloak/firecrest-realm.json)
LEEWAY_S = 5  # the services' clock-skew tolerance (common/auth.py)


def short_token(site) -> str:
    reply = requests.post(site.env["FIRECREST_TOKEN_URL"], data={"grant_type": "client_credentials"}, timeout=30,
                          auth=(site.env["FIRECREST_CLIENT_ID_ALICE_SHORT"],
                                site.env["FIRECREST_CLIENT_SECRET_ALICE_SHORT"]))
    reply.raise_for_status()
    assert reply.json()["expires_in"] == LIFESPAN_S
    return reply.json()["access_token"]


class ShortApi(Api):
    def __init__(self, site, token: str) -> None:
        super().__init__(site, "alice", "storage")
        self.fixed = token

    def request(self, method, path, **kwargs):  # type: ignore[override]
        headers = {**(kwargs.pop("headers", None) or {}), "Authorization": f"Bearer {self.fixed}"}
        return super().request(method, path, headers=headers, **kwargs)


def certificate(site, token: str, route: str) -> requests.Response:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                 serialization.PublicFormat.OpenSSH).decode()
    return requests.post(f"{site.service_url('certificator')}{route}", timeout=30,
                         data={"system": "cluster", "public_key": key},
                         headers={"Authorization": f"Bearer {token}",
                                  "X-Firecrest-Service-Token": site.secret("service-token")})


def test_an_upload_sent_after_the_token_expired_is_still_pulled(site, workdir, home_dir):
    token = short_token(site)
    issued = time.monotonic()
    api = ShortApi(site, token)
    local = workdir / "late.txt"
    local.write_text("sent after the token expired\n")
    task_id, task = start_upload(api, str(local), str(home_dir))
    time.sleep(max(0.0, issued + LIFESPAN_S + LEEWAY_S + 1 - time.monotonic()))

    # The token is expired now: the gateway and the ordinary certificate route refuse it ...
    reply = requests.get(f"{site.env['FIRECREST_URL']}/tasks/{task_id}", headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    assert reply.status_code == 401
    assert certificate(site, token, "/certificates").status_code == 401
    # ... the resume route (services only) still gives a short-lived certificate for it.
    resumed = certificate(site, token, "/certificates/resume")
    assert resumed.status_code == 200 and resumed.json()["certificate"].startswith("ssh-ed25519-cert")
    assert certificate(site, "", "/certificates/resume").status_code == 401

    assert run_command(task["data"]["msg"]["command"]).returncode == 0
    done = Api(site, "alice", "storage").wait(task_id, timeout=60, until="114")
    assert done["status"] == "114", done
    assert (home_dir / "late.txt").read_text() == "sent after the token expired\n"


def test_the_resume_route_needs_the_services_credential(site):
    token = short_token(site)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    reply = requests.post(f"{site.service_url('certificator')}/certificates/resume", timeout=30,
                          data={"system": "cluster", "public_key": key}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 403
