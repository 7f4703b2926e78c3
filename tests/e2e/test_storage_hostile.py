"""External transfers against a hostile user, on the real site: file names that would run if a shell saw them,
object names that try to reach another user's objects, upload URLs used after their task has ended, and more
transfers than a user may hold at once."""

from __future__ import annotations

import http.client
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from conftest import user_ids
from gateway_client import Api
from test_storage import download, service_staging, start_upload, swift_connection, unstaged, upload

from storage.swift import Staging

SERVICE = "storage"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

REFUSED = (401, 403, 404)


@pytest.fixture(scope="module")
def staging(site) -> Staging:
    return service_staging(site)


def invalidate(who: Api, task_id: str) -> requests.Response:
    return who.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": task_id})


def raw_put(url: str, body: bytes = b"x") -> int:
    """A PUT of exactly this path, `..` segments and all (curl --path-as-is): no HTTP library resolves them."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("PUT", f"{parts.path}?{parts.query}", body=body)
        return conn.getresponse().status
    finally:
        conn.close()


def bobs_download(bob_api: Api, bob_dir: Path) -> tuple[str, str]:
    """Bob's staged download (kept in Swift for its URL): (task id, URL)."""
    source = bob_dir / "data.txt"
    source.write_text("bob's data")
    os.chown(source, *user_ids("bob"))
    task_id, task = download(bob_api, str(source))
    assert task["status"] == "117", task
    return task_id, task["data"]["url"]


def traversal_to(segment_url: str, alice_task: str, bob_task: str) -> str:
    """Alice's segment URL, for a name that climbs out of her area into bob's object."""
    return segment_url.format(index=0).replace(f"/transfer-{alice_task}/segments/00000000?",
                                               f"/transfer-{alice_task}/segments/../../transfer-{bob_task}/data.txt?")


def plant(site, container: str, name: str, body: bytes = b"hostile") -> None:
    """Store an object under exactly `name`, as a Swift that let any name through a prefix URL would have (the
    site's proxy refuses such names at PUT: the service must not rely on it)."""
    conn = swift_connection(site)
    storage = urlsplit(conn.get_auth()[0])
    http_conn = http.client.HTTPConnection(storage.hostname, storage.port, timeout=30)
    try:
        http_conn.request("PUT", f"{storage.path}/{container}/{name}", body=body, headers={"X-Auth-Token": conn.token})
        assert http_conn.getresponse().status == 201
    finally:
        http_conn.close()
        conn.close()


# -- hostile names of files --------------------------------------------------------------------------------------------

# File names cannot hold "/": the canary is a bare name, looked for where a command would have run.
HOSTILE = ["$(touch {c})", "`touch {c}`", "it's", 'a"b', "-rf", "--help", "x y", "ü ∂ 漢", "a;touch {c}", "%2e%2e",
           "?q=1#f", "a\\b", "$HOME"]


@pytest.fixture
def canary(site, home_dir) -> str:
    name = f"canary-{uuid.uuid4().hex}"
    yield name
    for where in ("/home/alice", "/tmp", str(home_dir), "/"):
        assert not site.lexists(os.path.join(where, name)), "a hostile value was executed"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_travel_literally(api, workdir, home_dir, canary, name):
    name = name.format(c=canary)
    directory = home_dir / f"d {name}"
    directory.mkdir()
    os.chown(directory, *user_ids("alice"))
    local = workdir / name
    local.write_bytes(name.encode() * 3)
    task = upload(api, local, str(directory))
    assert task["status"] == "114", task
    landed = directory / name
    assert landed.read_bytes() == name.encode() * 3

    _, task = download(api, str(landed))
    assert task["status"] == "117", task
    assert requests.get(task["data"]["url"], timeout=30).content == name.encode() * 3


def test_dot_dot_in_a_source_name_stays_in_the_task(api, workdir, home_dir):
    """Only the basename of sourcePath is used: `../x` can never name an object outside the task's prefix."""
    local = workdir / "x"
    local.write_text("x")
    task_id, task = start_upload(api, str(workdir / ".." / workdir.name / "x"), str(home_dir))
    assert task["data"]["source"] == "x"
    assert f"/transfer-{task_id}/x?" in task["data"]["msg"]["parameters"]["url"]
    api.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": task_id})


# -- object names --------------------------------------------------------------------------------------------


def test_a_traversal_name_is_refused_at_put(api, bob_api, staging, workdir, home_dir, bob_dir):
    bob_task, bob_url = bobs_download(bob_api, bob_dir)
    alice_task, task = start_upload(api, str(workdir / "f.txt"), str(home_dir))
    msg = task["data"]["msg"]
    assert raw_put(traversal_to(msg["large_files"]["segment_url"], alice_task, bob_task)) == 400
    first = msg["large_files"]["segment_url"].format(index=0)
    for other in ("segments/0000000x", "segments/00000001/x", "segments/.."):
        assert raw_put(first.replace("segments/00000000?", f"{other}?")) == 400
    assert staging.listing(alice_task) == []
    assert requests.get(bob_url, timeout=30).content == b"bob's data"
    assert invalidate(api, alice_task).status_code == 201
    assert invalidate(bob_api, bob_task).status_code == 201


def test_a_traversal_name_then_invalidate_leaves_bobs_object(site, api, bob_api, staging, workdir, home_dir,
                                                             bob_dir):
    bob_task, bob_url = bobs_download(bob_api, bob_dir)
    alice_task, _ = start_upload(api, str(workdir / "f.txt"), str(home_dir))
    plant(site, f"transfer-{alice_task}", f"segments/../../transfer-{bob_task}/data.txt")
    assert [o.name for o in staging.listing(alice_task)] == [f"segments/../../transfer-{bob_task}/data.txt"]
    assert invalidate(api, alice_task).status_code == 201
    assert staging.listing(alice_task) is None  # the hostile object went with alice's area...
    assert requests.get(bob_url, timeout=30).content == b"bob's data"  # ...and nothing of bob's
    assert invalidate(bob_api, bob_task).status_code == 201


def test_a_traversal_name_then_the_sweep_leaves_bobs_object(site, api, bob_api, staging, workdir, home_dir,
                                                            bob_dir):
    bob_task, bob_url = bobs_download(bob_api, bob_dir)
    alice_task, _ = start_upload(api, str(workdir / "f.txt"), str(home_dir))
    plant(site, f"transfer-{alice_task}", f"segments/../../transfer-{bob_task}/data.txt")
    staging.end_urls(alice_task, client=False, job=False, expires_in=-60)  # as if her URLs had expired
    staging.sweep(legacy_max_age_s=30 * 86400)
    assert staging.listing(alice_task) is None
    assert requests.get(bob_url, timeout=30).content == b"bob's data"
    # alice's task learns its area is gone: it ends with the reason (the hostile name was never taken as data)
    ended = api.wait(alice_task, until="114")
    assert ended["status"] == "115" and "start a new upload" in ended["data"]["msg"]
    assert invalidate(bob_api, bob_task).status_code == 201


def test_the_sweep_deletes_hostile_names_of_other_containers_exactly(site, bob_api, staging, bob_dir):
    """A container of another layout (the per-user one of earlier versions) holding a name with `..`: the sweep
    deletes that object, not the one the name would resolve to."""
    bob_task, bob_url = bobs_download(bob_api, bob_dir)
    container = f"legacy-{uuid.uuid4().hex[:8]}"
    conn = swift_connection(site)
    conn.put_container(container)
    name = f"x/../../transfer-{bob_task}/data.txt"
    plant(site, container, name)
    assert [o["name"] for o in conn.get_container(container)[1]] == [name]
    assert staging.sweep_legacy(container, max_age_s=-60) == 1
    assert conn.get_container(container)[1] == []
    conn.delete_container(container)
    conn.close()
    assert requests.get(bob_url, timeout=30).content == b"bob's data"
    assert invalidate(bob_api, bob_task).status_code == 201


# -- upload URLs end with their task --------------------------------------------------------------------------


def upload_urls(task: dict) -> list[str]:
    msg = task["data"]["msg"]
    return [msg["parameters"]["url"], msg["large_files"]["segment_url"].format(index=7)]


def test_an_upload_url_takes_nothing_after_114(api, staging, workdir, home_dir):
    local = workdir / "done.txt"
    local.write_text("done")
    task_id, task = start_upload(api, str(local), str(home_dir))
    assert requests.put(task["data"]["msg"]["parameters"]["url"], data=b"done", timeout=30).status_code == 201
    assert api.wait(task_id, until="114")["status"] == "114"
    for url in upload_urls(task):
        assert requests.put(url, data=b"more" * 1000, timeout=30).status_code in REFUSED
    assert unstaged(staging, task_id)


def test_an_upload_url_takes_nothing_after_115(api, staging, workdir, home_dir):
    task_id, task = start_upload(api, str(workdir / "seg.bin"), str(home_dir))
    marker = requests.put(task["data"]["msg"]["parameters"]["url"], data=b"", timeout=30,
                          headers={"X-Object-Meta-Segments": "2"})  # and no segments: it fails
    assert marker.status_code == 201
    assert api.wait(task_id, until="114")["status"] == "115"
    for url in upload_urls(task):
        assert requests.put(url, data=b"more", timeout=30).status_code in REFUSED
    assert unstaged(staging, task_id)


def test_an_upload_url_takes_nothing_after_invalidate(api, staging, workdir, home_dir):
    task_id, task = start_upload(api, str(workdir / "inv.bin"), str(home_dir))
    assert invalidate(api, task_id).status_code == 201
    for url in upload_urls(task):
        assert requests.put(url, data=b"more", timeout=30).status_code in REFUSED
    assert staging.listing(task_id) is None


def test_a_download_keeps_its_get_url_and_ends_its_job_urls(api, staging, home_dir):
    (home_dir / "d.txt").write_text("download")
    task_id, task = download(api, str(home_dir / "d.txt"))
    job_put = staging.temp_url(task_id, "d.txt", "PUT", public=True, job=True)  # what the push job had
    assert requests.put(job_put, data=b"overwrite", timeout=30).status_code == 401
    assert requests.get(task["data"]["url"], timeout=30).content == b"download"
    assert invalidate(api, task_id).status_code == 201
    assert requests.get(task["data"]["url"], timeout=30).status_code in REFUSED


# -- the bound on transfers in flight -------------------------------------------------------------------------


def test_transfers_in_flight_are_bounded_per_user(api, bob_api, staging, workdir, home_dir):
    limit = staging.config.max_transfers_per_user
    local = workdir / "one.txt"
    local.write_text("one")
    started: list[str] = []
    try:
        reply = None
        for _ in range(limit + 1):
            reply = api.post("/xfer-external/upload", sourcePath=str(local), targetPath=str(home_dir))
            if reply.status_code != 201:
                break
            started.append(reply.json()["task_id"])
        assert reply is not None and reply.status_code == 429, reply.text
        assert int(reply.headers["Retry-After"]) > 0
        body = reply.json()
        assert body["description"] == "Too many transfers in flight"
        assert f"in flight, the most allowed at once ({limit})" in body["error"]
        (home_dir / "src.txt").write_text("x")
        refused = api.post("/xfer-external/download", sourcePath=str(home_dir / "src.txt"))
        assert refused.status_code == 429 and "Retry-After" in refused.headers  # downloads count too

        theirs = bob_api.post("/xfer-external/upload", sourcePath="/tmp/b.txt", targetPath="/home/bob")
        assert theirs.status_code == 201  # another user is not held back
        invalidate(bob_api, theirs.json()["task_id"])

        first = started[0]  # one transfer ends: there is room for one more
        offer = api.wait(first, until="111")
        assert requests.put(offer["data"]["msg"]["parameters"]["url"], data=b"one", timeout=30).status_code == 201
        assert api.wait(first, until="114")["status"] == "114"
        again = api.post("/xfer-external/upload", sourcePath=str(local), targetPath=str(home_dir))
        assert again.status_code == 201, again.text
        started.append(again.json()["task_id"])
        assert api.post("/xfer-external/upload", sourcePath=str(local),
                        targetPath=str(home_dir)).status_code == 429
        assert invalidate(api, started[1]).status_code == 201  # so does an invalidated one
        freed = api.post("/xfer-external/upload", sourcePath=str(local), targetPath=str(home_dir))
        assert freed.status_code == 201, freed.text
        started.append(freed.json()["task_id"])
    finally:
        for task_id in started:
            invalidate(api, task_id)
