"""The tasks service against the real Redis: the public reads through the gateway (FirecREST v1 §4), the internal
routes directly (service credential + owner's token), isolation between users, and claims after a crash."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest
import redis
import requests

HOLDER = f"tests-{uuid.uuid4().hex[:12]}"
STATUS_KEYS = {"task_id", "hash_id", "user", "status", "description", "data", "service", "system", "created_at",
               "updated_at", "last_modify"}


class Internal:
    """The tasks service's internal routes, called as the other services do."""

    def __init__(self, site) -> None:
        self.site = site
        self.url = site.service_url("tasks")
        self.credential = {"X-Firecrest-Service-Token": site.secret("service-token")}

    def call(self, method: str, path: str, user: str | None, payload: dict | None = None,
             credential: bool = True) -> requests.Response:
        headers = dict(self.credential) if credential else {}
        if user:
            headers["Authorization"] = f"Bearer {self.site.token(user)}"
        return requests.request(method, self.url + path, json=payload, headers=headers, timeout=10)

    def create(self, user: str = "alice", **payload) -> str:
        """A task of the service `test`, which no live process claims, leased to this test for the longest lease
        (the service's own recovery never takes a test's task: no race with the site the tests run beside)."""
        defaults = {"service": "test", "system": "cluster", "lease_s": 3600, "holder": HOLDER}
        reply = self.call("POST", "/", user, {**defaults, **payload})
        assert reply.status_code == 201, reply.text
        assert reply.json()["task_url"] == f"/tasks/{reply.json()['hash_id']}"
        return reply.json()["hash_id"]


@pytest.fixture
def internal(site) -> Internal:
    return Internal(site)


def public(site, user: str, path: str = "", **params) -> requests.Response:
    return requests.get(site.env["FIRECREST_URL"] + "/tasks" + path, params=params,
                        headers={"Authorization": f"Bearer {site.token(user)}"}, timeout=10)


def test_new_task_as_the_contract_shows_it(site, internal):
    tid = internal.create(data="Queued", service="compute")  # held by this test: compute's recovery leaves it
    reply = public(site, "alice", f"/{tid}")
    assert reply.status_code == 200
    task = reply.json()["task"]
    assert set(task) == STATUS_KEYS | {"task_url"}
    assert task["status"] == "100" and isinstance(task["status"], str)
    assert task["description"] == "Queued" and task["data"] == "Queued"
    assert (task["user"], task["service"], task["system"]) == ("alice", "compute", "cluster")
    assert task["task_url"] == f"/tasks/{tid}" and task["hash_id"] == task["task_id"] == tid
    time.strptime(task["created_at"], "%Y-%m-%dT%H:%M:%S")
    internal.call("PUT", f"/{tid}", "alice", {"status": "200", "holder": HOLDER})  # out of compute's in-flight set


def test_listing_by_ids_and_in_full(site, internal):
    first, second = internal.create(), internal.create()
    listed = public(site, "alice", tasks=f"{first},{second},{'0' * 32}").json()["tasks"]
    assert set(listed) == {first, second}  # an unknown id is left out
    assert "task_url" not in listed[first]  # as the contract's list
    assert {first, second} <= set(public(site, "alice").json()["tasks"])
    # the early name
    assert first in public(site, "alice", "/tasks", tasks=first).json()["tasks"]


def test_a_listing_longer_than_one_read_is_whole_and_in_order(site, internal):
    """The full listing is read from Redis LIST_BATCH tasks at a time and written as it goes: every task is
    there once, oldest first, in one JSON document."""
    from tasks.store import LIST_BATCH

    made = [internal.create() for _ in range(LIST_BATCH + 5)]
    try:
        reply = public(site, "alice")
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
        listed = list(reply.json()["tasks"])
        assert [t for t in listed if t in set(made)] == made
    finally:  # alice's later listings (other tests', the fuzz's schema checks) need not carry 505 test tasks
        for tid in made:
            internal.call("DELETE", f"/{tid}", "alice")


def test_updates_move_the_status_and_keep_the_private_part_private(site, internal):
    tid = internal.create(private="sealed-secret-blob")
    reply = internal.call("PUT", f"/{tid}", "alice", {"status": "200", "data": {"jobid": "7"}})
    assert reply.status_code == 200 and reply.json() == {"success": "task updated"}
    task = public(site, "alice", f"/{tid}").json()["task"]
    assert (task["status"], task["description"], task["data"]) == ("200", "Finished successfully", {"jobid": "7"})
    everything = public(site, "alice").text + public(site, "alice", f"/{tid}").text
    assert "sealed-secret-blob" not in everything


def test_a_missing_message_becomes_the_status_description(internal, site):
    tid = internal.create()
    assert internal.call("PUT", f"/{tid}", "alice", {"status": "400"}).status_code == 200
    assert public(site, "alice", f"/{tid}").json()["task"]["data"] == "Finished with errors"


def test_bob_cannot_see_or_touch_alices_tasks(site, internal):
    tid = internal.create()
    assert public(site, "bob", f"/{tid}").status_code == 403
    assert public(site, "bob", f"/{tid}").json()["description"] == "Operation not permitted. Invalid task owner."
    assert public(site, "bob", tasks=tid).json() == {"tasks": {}}
    assert tid not in public(site, "bob").json()["tasks"]
    assert internal.call("PUT", f"/{tid}", "bob", {"status": "200"}).status_code == 403
    assert internal.call("DELETE", f"/{tid}", "bob").status_code == 403
    assert public(site, "alice", f"/{tid}").json()["task"]["status"] == "100"


def test_unknown_task_is_404(site):
    reply = public(site, "alice", f"/{'f' * 32}")
    assert reply.status_code == 404 and reply.json()["error"] == f"Task {'f' * 32} does not exist"


@pytest.mark.parametrize("ids", ["a;b", "$(id)", "a b", "x" * 65, "'", "../x"])
def test_invalid_ids_are_400(site, ids):
    reply = public(site, "alice", tasks=ids)
    assert reply.status_code == 400 and "not a valid task id" in reply.json()["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["", "/0123456789abcdef0123456789abcdef", "/claim", "/taskslist", "/tasklist"])
def test_internal_routes_are_not_routed_by_the_gateway(site, method, path):
    reply = requests.request(method, site.env["FIRECREST_URL"] + "/tasks" + path, json={"status": "200"},
                             headers={"Authorization": f"Bearer {site.token('alice')}",
                                      "X-Firecrest-Service-Token": site.secret("service-token")}, timeout=10)
    assert reply.status_code in (404, 405)


def test_internal_routes_need_the_credential_and_the_token(internal):
    tid = internal.create()
    assert internal.call("POST", "/", "alice", {"service": "compute"}, credential=False).status_code == 403
    assert internal.call("PUT", f"/{tid}", "alice", {"status": "200"}, credential=False).status_code == 403
    assert internal.call("PUT", f"/{tid}", None, {"status": "200"}).status_code == 401
    assert internal.call("POST", "/claim", None, {"service": "compute"}, credential=False).status_code == 403
    wrong = requests.post(internal.url + "/claim", json={"service": "compute"}, timeout=10,
                          headers={"X-Firecrest-Service-Token": "not-the-credential"})
    assert wrong.status_code == 403


def test_internal_bad_input(internal):
    tid = internal.create()
    bad = internal.call("PUT", f"/{tid}", "alice", {"status": "999"})
    assert bad.status_code == 400 and "Status code error" in bad.text
    assert internal.call("POST", "/", "alice", {"service": "nope"}).status_code == 403
    assert internal.call("PUT", f"/{'e' * 32}", "alice", {"status": "200"}).status_code == 404
    assert internal.call("POST", "/", "alice", {"service": "compute", "lease_s": -1}).status_code == 400
    raw = requests.put(internal.url + f"/{tid}", data="not json", timeout=10,
                       headers={**internal.credential, "Authorization": f"Bearer {internal.site.token('alice')}"})
    assert raw.status_code == 400
    deep = requests.put(internal.url + f"/{tid}", data="[" * 100000 + "]" * 100000, timeout=10,
                        headers={**internal.credential, "Content-Type": "application/json",
                                 "Authorization": f"Bearer {internal.site.token('alice')}"})
    assert deep.status_code == 400, deep.text


def test_unfinished_tasks_of_a_service_without_reading_every_task(site, internal):
    """What storage's bound on transfers in flight reads: the caller's own unfinished tasks of one service only."""
    open_, done, deleted, bobs = internal.create(), internal.create(), internal.create(), internal.create("bob")
    assert internal.call("PUT", f"/{done}", "alice", {"status": "200", "holder": HOLDER}).status_code == 200
    assert internal.call("DELETE", f"/{deleted}", "alice").status_code == 204
    listed = internal.call("GET", "/unfinished/test", "alice").json()["tasks"]
    assert open_ in listed and listed[open_]["status"] == "100"
    assert not {done, deleted, bobs} & set(listed)
    assert bobs in internal.call("GET", "/unfinished/test", "bob").json()["tasks"]
    assert internal.call("GET", "/unfinished/test", "alice", credential=False).status_code == 403
    assert internal.call("GET", "/unfinished/nope", "alice").status_code == 404
    through_gateway = public(site, "alice", "/unfinished/test")  # internal: a user's token alone reads nothing
    assert through_gateway.status_code in (403, 404) and "tasks" not in through_gateway.json()


def test_delete_retires_the_task(site, internal):
    tid = internal.create()
    assert internal.call("DELETE", f"/{tid}", "alice").status_code == 204
    assert public(site, "alice", f"/{tid}").json()["task"]["status"] == "302"
    # the late outcome of work still running (a transfer invalidated midway) does not bring it back
    assert internal.call("PUT", f"/{tid}", "alice", {"status": "200", "data": "late"}).status_code == 404
    assert internal.call("PUT", f"/{tid}", "alice", {"lease_s": 15}).status_code == 404
    assert public(site, "alice", f"/{tid}").json()["task"]["status"] == "302"


def test_a_task_whose_lease_ran_out_is_claimed_once(internal):
    tid = internal.create(private="resume-me", lease_s=0)
    first = internal.call("POST", "/claim", None, {"service": "test", "lease_s": 60, "limit": 1000}).json()
    mine = [t for t in first["tasks"] if t["task"]["task_id"] == tid]
    assert mine and mine[0]["private"] == "resume-me"
    second = internal.call("POST", "/claim", None, {"service": "test", "lease_s": 60, "limit": 1000}).json()
    assert tid not in {t["task"]["task_id"] for t in second["tasks"]}  # leased to the first claimer
    # a final status takes it out of the in-flight set for good
    internal.call("PUT", f"/{tid}", "alice", {"status": "200"})


def test_a_process_that_lost_its_lease_cannot_undo_the_new_holders_work(site, internal):
    """Fencing: after another process claimed the task, the first one's late updates and renewals are refused
    (409), and the new holder's record stands."""
    tid = internal.create(private="p", lease_s=0, holder="first")
    claimed = internal.call("POST", "/claim", None, {"service": "test", "lease_s": 60, "limit": 1000,
                                                     "holder": "second"}).json()
    assert tid in {t["task"]["task_id"] for t in claimed["tasks"]}
    assert internal.call("PUT", f"/{tid}", "alice", {"status": "200", "data": "late", "holder": "first"}
                         ).status_code == 409
    assert internal.call("PUT", f"/{tid}", "alice", {"lease_s": 60, "holder": "first"}).status_code == 409
    assert internal.call("PUT", f"/{tid}", "alice", {"lease_s": 60, "holder": "second"}).status_code == 200
    assert internal.call("PUT", f"/{tid}", "alice", {"status": "200", "data": "done", "holder": "second"}
                         ).status_code == 200
    task = public(site, "alice", f"/{tid}").json()["task"]
    assert (task["status"], task["data"]) == ("200", "done")
    assert internal.call("POST", "/", "alice", {"service": "compute", "holder": "a b"}).status_code == 400


def test_a_task_that_cannot_be_resumed_is_closed_with_a_reason(site, internal):
    tid = internal.create(lease_s=0)  # no private part: nothing to resume from
    internal.call("POST", "/claim", None, {"service": "test", "lease_s": 60, "limit": 1000})
    task = public(site, "alice", f"/{tid}").json()["task"]
    assert task["status"] == "400" and "nothing more will happen" in task["data"]


def test_tasks_survive_a_redis_restart_and_a_redis_outage_is_a_clear_503(site, internal):
    tid = internal.create(data="before")
    with contextlib.suppress(redis.ConnectionError):  # the connection ends with the server
        redis.Redis.from_url(site.env["REDIS_URL"]).shutdown()
    try:
        down = public(site, "alice", f"/{tid}")
        assert down.status_code == 503
        assert down.json()["description"] == "Task store unavailable"
    finally:
        site.control("restart", "redis")
    assert public(site, "alice", f"/{tid}").json()["task"]["data"] == "before"


def test_status_route(site):
    assert public(site, "alice", "/status").json() == {"success": "ack"}
    assert json.loads(public(site, "alice", "/status").text) == {"success": "ack"}


def test_lifetimes_follow_the_contract(site, internal):
    store = redis.Redis.from_url(site.env["REDIS_URL"])
    compute = internal.create(service="compute")  # held by this test: compute's recovery leaves it
    assert 86400 - 5 <= store.ttl(f"firecrest:task:{compute}") <= 86400
    internal.call("PUT", f"/{compute}", "alice", {"status": "200"})
    assert 86400 - 5 <= store.ttl(f"firecrest:task:{compute}") <= 86400  # every update renews it
    storage = internal.create(service="storage")
    assert 604800 - 5 <= store.ttl(f"firecrest:task:{storage}") <= 604800
    internal.call("PUT", f"/{storage}", "alice", {"status": "400", "holder": HOLDER})
    internal.call("DELETE", f"/{compute}", "alice")
    assert store.ttl(f"firecrest:task:{compute}") <= 300
