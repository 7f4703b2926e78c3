"""Idempotency keys on the native site: a recorded reply survives a restart of the services (it lives in Redis,
with its 24 h TTL), and the tasks service's internal routes, called as the services call them, hold the rules
(the services' credential required, keys per user, only the reservation's holder records or releases)."""

from __future__ import annotations

import uuid

import pytest
import redis
import requests
from gateway_client import Api
from test_compute import script

from tasks.idempotency import TTL_S, IdempotencyStore

REPLY = "Idempotency-Key-Reply"
FINGERPRINT = "ab" * 32


class Internal:
    def __init__(self, site) -> None:
        self.site = site
        self.url = site.service_url("tasks")

    def call(self, method: str, path: str, user: str, payload: dict, credential: bool = True) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.site.token(user)}"}
        if credential:
            headers["X-Firecrest-Service-Token"] = self.site.secret("service-token")
        return requests.request(method, self.url + path, json=payload, headers=headers, timeout=10)


@pytest.fixture
def internal(site) -> Internal:
    return Internal(site)


def test_a_recorded_reply_survives_a_restart_of_the_services(site):
    api, key, name = Api(site, "alice", "compute"), f"t-{uuid.uuid4()}", f"idem-{uuid.uuid4().hex[:10]}"
    files = {"file": ("job.sh", script("true", name))}
    first = api.request("POST", "/jobs/upload", files=files, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and first.headers[REPLY] == "miss", first.text
    site.control("restart", "services")
    again = api.request("POST", "/jobs/upload", files=files, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers[REPLY] == "hit", again.text
    assert again.json() == first.json()
    other = api.request("POST", "/jobs/upload", files={"file": ("job.sh", script("false", name))},
                        headers={"Idempotency-Key": key})
    assert other.status_code == 422
    task = api.wait(first.json()["task_id"])
    assert task["status"] == "200", task
    jobs = site.shell("alice", f"squeue --states=all -h -n {name} -o %i", check=True).stdout.split()
    assert jobs == [str(task["data"]["jobid"])]
    ttl = IdempotencyStore(redis.Redis.from_url(site.env["REDIS_URL"])).ttl("alice", key)
    assert TTL_S - 600 < ttl <= TTL_S


def test_internal_routes_need_the_service_credential(internal):
    reply = internal.call("POST", "/idempotency/reservation", "alice", {"key": "k", "fingerprint": FINGERPRINT},
                          credential=False)
    assert reply.status_code == 403


def test_reserve_complete_release_per_user(internal):
    key = f"t-{uuid.uuid4()}"
    new = internal.call("POST", "/idempotency/reservation", "alice", {"key": key, "fingerprint": FINGERPRINT})
    assert new.status_code == 200 and new.json()["state"] == "new", new.text
    nonce = new.json()["nonce"]
    busy = internal.call("POST", "/idempotency/reservation", "alice", {"key": key, "fingerprint": FINGERPRINT})
    assert busy.json() == {"state": "in_flight", "retry_after": 1}
    other = internal.call("POST", "/idempotency/reservation", "alice", {"key": key, "fingerprint": "cd" * 32})
    assert other.json() == {"state": "mismatch"}
    bobs = internal.call("POST", "/idempotency/reservation", "bob", {"key": key, "fingerprint": FINGERPRINT})
    assert bobs.json()["state"] == "new"  # bob's key of the same name is his own
    reply = {"status": 201, "body": '{"task_id": "x"}', "headers": {"Content-Type": "application/json"}}
    # bob cannot record or release alice's reservation, even with her nonce
    assert internal.call("PUT", "/idempotency/reply", "bob", {"key": key, "nonce": nonce, "reply": reply}
                         ).status_code == 409
    assert internal.call("PUT", "/idempotency/reply", "alice", {"key": key, "nonce": "0" * 32, "reply": reply}
                         ).status_code == 409
    assert internal.call("PUT", "/idempotency/reply", "alice", {"key": key, "nonce": nonce, "reply": reply}
                         ).status_code == 204
    hit = internal.call("POST", "/idempotency/reservation", "alice", {"key": key, "fingerprint": FINGERPRINT})
    assert hit.json() == {"state": "hit", "reply": reply}
    # a recorded reply is not released
    internal.call("DELETE", "/idempotency/reservation", "alice", {"key": key, "nonce": nonce})
    assert internal.call("POST", "/idempotency/reservation", "alice",
                         {"key": key, "fingerprint": FINGERPRINT}).json()["state"] == "hit"
    released = internal.call("DELETE", "/idempotency/reservation", "bob", {"key": key, "nonce": bobs.json()["nonce"]})
    assert released.status_code == 204
    assert internal.call("POST", "/idempotency/reservation", "bob",
                         {"key": key, "fingerprint": "cd" * 32}).json()["state"] == "new"


@pytest.mark.parametrize("payload", [
    {"key": "", "fingerprint": FINGERPRINT},
    {"key": "a b", "fingerprint": FINGERPRINT},
    {"key": "x" * 256, "fingerprint": FINGERPRINT},
    {"key": "k", "fingerprint": "not hex"},
    {"key": ["k"], "fingerprint": FINGERPRINT},
    {"fingerprint": FINGERPRINT},
])
def test_bad_reservations_are_400(internal, payload):
    assert internal.call("POST", "/idempotency/reservation", "alice", payload).status_code == 400


@pytest.mark.parametrize("reply", [
    None, {"status": 99, "body": ""}, {"status": True, "body": ""}, {"status": 201, "body": "x" * 70000},
    {"status": 201, "body": "", "headers": {f"h{i}": "v" for i in range(20)}}, {"status": 201, "body": 5},
])
def test_bad_replies_are_400(internal, reply):
    key = f"t-{uuid.uuid4()}"
    nonce = internal.call("POST", "/idempotency/reservation", "alice",
                          {"key": key, "fingerprint": FINGERPRINT}).json()["nonce"]
    assert internal.call("PUT", "/idempotency/reply", "alice",
                         {"key": key, "nonce": nonce, "reply": reply}).status_code == 400
