"""Idempotency-Key through the gateway against the real site: the same key and request give the same task once
(one job in Slurm), another request with the key is 422, concurrent duplicates make one task, keys are per user,
hostile keys are 400, a failed first request releases its key; on compute's submissions (upload, path, the early
`/jobs/{machine}`) and storage's xfer-internal and xfer-external."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from gateway_client import MACHINE, Api
from test_compute import script

SERVICE = "compute"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)
REPLY = "Idempotency-Key-Reply"


def new_key() -> str:
    return f"t-{uuid.uuid4()}"


def keyed(api: Api, path: str, key: str | bytes, files: dict | None = None, **form: object) -> requests.Response:
    return api.request("POST", path, data=form, files=files, headers={"Idempotency-Key": key})


def upload(api: Api, key: str, name: str, body: str = "true") -> requests.Response:
    return keyed(api, "/jobs/upload", key, files={"file": ("job.sh", script(body, name))})


def jobs_named(site, user: str, name: str) -> list[str]:
    """The user's jobs with that name, in the queue or just finished (squeue keeps them for MinJobAge)."""
    return site.shell(user, f"squeue --states=all -h -n {name} -o %i", check=True).stdout.split()


def submitted(api: Api, task_id: str) -> str:
    task = api.wait(task_id)
    assert task["status"] == "200", task
    return str(task["data"]["jobid"])


@pytest.fixture(scope="module")
def storage(site) -> Api:
    return Api(site, "alice", "storage")


def test_same_key_and_request_give_the_first_reply_and_one_job(site, api):
    key, name = new_key(), f"idem-{uuid.uuid4().hex[:10]}"
    first = upload(api, key, name)
    assert first.status_code == 201, first.text
    assert first.headers[REPLY] == "miss"
    again = upload(api, key, name)
    assert again.status_code == 201 and again.headers[REPLY] == "hit"
    assert again.json() == first.json()
    jobid = submitted(api, first.json()["task_id"])
    later = upload(api, key, name)  # after the task ended: still the same reply
    assert later.headers[REPLY] == "hit" and later.json()["task_id"] == first.json()["task_id"]
    assert jobs_named(site, "alice", name) == [jobid]


def test_without_a_key_nothing_changes(site, api):
    name = f"idem-{uuid.uuid4().hex[:10]}"
    replies = [api.post("/jobs/upload", files={"file": ("job.sh", script("true", name))}) for _ in range(2)]
    assert all(r.status_code == 201 and REPLY not in r.headers for r in replies)
    assert replies[0].json()["task_id"] != replies[1].json()["task_id"]
    jobs = {submitted(api, r.json()["task_id"]) for r in replies}
    assert sorted(jobs_named(site, "alice", name)) == sorted(jobs)


def test_same_key_with_another_request_is_422(site, api):
    key, name = new_key(), f"idem-{uuid.uuid4().hex[:10]}"
    first = upload(api, key, name)
    assert first.status_code == 201, first.text
    variants = [
        upload(api, key, name, body="false"),  # another script
        keyed(api, "/jobs/upload", key, files={"file": ("job.sh", script("true", name))}, account="x"),  # a field
        keyed(api, "/jobs/path", key, targetPath="/nonexistent.sh"),  # another route
    ]
    for reply in variants:
        assert reply.status_code == 422, reply.text
        assert reply.json()["description"] == "Idempotency-Key reused with another request"
        assert REPLY not in reply.headers
    submitted(api, first.json()["task_id"])
    assert len(jobs_named(site, "alice", name)) == 1


def test_concurrent_duplicates_make_one_task(site, api):
    key, name, count = new_key(), f"idem-{uuid.uuid4().hex[:10]}", 6
    barrier, replies = threading.Barrier(count), []

    def one() -> None:
        barrier.wait()
        replies.append(upload(api, key, name))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == count
    created = [r for r in replies if r.status_code == 201]
    busy = [r for r in replies if r.status_code == 409]
    assert len(created) + len(busy) == count, [r.text for r in replies]
    assert [r.headers[REPLY] for r in created].count("miss") == 1
    assert {r.json()["task_id"] for r in created} == {created[0].json()["task_id"]}
    for reply in busy:
        assert int(reply.headers["Retry-After"]) >= 1 and reply.json()["description"]
    submitted(api, created[0].json()["task_id"])
    assert len(jobs_named(site, "alice", name)) == 1


def test_keys_are_per_user(site, api, bob_api):
    key, name = new_key(), f"idem-{uuid.uuid4().hex[:10]}"
    alices = upload(api, key, name)
    bobs = upload(bob_api, key, name)
    assert alices.status_code == bobs.status_code == 201
    assert alices.headers[REPLY] == bobs.headers[REPLY] == "miss"
    assert alices.json()["task_id"] != bobs.json()["task_id"]
    assert upload(bob_api, key, name).json()["task_id"] == bobs.json()["task_id"]
    submitted(bob_api, bobs.json()["task_id"])
    submitted(api, alices.json()["task_id"])
    assert len(jobs_named(site, "bob", name)) == 1


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "x" * 10_000, "é".encode(), "ключ".encode(), b"\xff",
                                 "a\tb", "a\u00a0b"])
def test_hostile_keys_are_400(site, api, key):
    name = f"idem-{uuid.uuid4().hex[:10]}"
    reply = upload(api, key, name)
    assert reply.status_code == 400, reply.text
    assert reply.json()["description"] == "Invalid Idempotency-Key"
    assert jobs_named(site, "alice", name) == []


def raw_post(site, path: str, headers: bytes, body: bytes = b"targetPath=/nonexistent.sh") -> bytes:
    """A request with bytes no client library sends (a line break inside a header): the status line."""
    url = urlsplit(site.env["FIRECREST_URL"])
    head = (f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {site.token('alice')}\r\n"
            f"X-Machine-Name: {MACHINE}\r\nContent-Type: application/x-www-form-urlencoded\r\n").encode()
    tail = f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    request = head + headers + tail + body
    with socket.create_connection((url.hostname, url.port or 80), timeout=30) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("header", [b"Idempotency-Key: a\nb", b"Idempotency-Key: a\rb", b"Idempotency-Key: a\r\n b",
                                    b"Idempotency-Key: a\x00b", b"Idempotency-Key: a\r\nIdempotency-Key: b"])
def test_line_breaks_and_repeated_keys_are_400(site, header):
    assert raw_post(site, "/compute/jobs/path", header).split()[1] == b"400"


def test_a_failed_first_request_releases_its_key(site, api):
    key, name = new_key(), f"idem-{uuid.uuid4().hex[:10]}"
    empty = keyed(api, "/jobs/upload", key, files={"file": ("job.sh", b"")})
    assert empty.status_code == 400 and REPLY not in empty.headers
    again = keyed(api, "/jobs/upload", key, files={"file": ("job.sh", b"")})
    assert again.status_code == 400 and REPLY not in again.headers  # run again, not replayed
    fixed = upload(api, key, name)  # the client fixes its request and keeps its key
    assert fixed.status_code == 201 and fixed.headers[REPLY] == "miss"
    submitted(api, fixed.json()["task_id"])


def test_path_and_early_route_are_keyed(site, api, home_dir: Path):
    name = f"idem-{uuid.uuid4().hex[:10]}"
    path = home_dir / "job.sh"
    path.write_bytes(script("true", name))
    key = new_key()
    replies = [keyed(api, "/jobs/path", key, targetPath=str(path)) for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201], replies[0].text
    assert [r.headers[REPLY] for r in replies] == ["miss", "hit"]
    assert replies[0].json() == replies[1].json()
    early, key = Api(site, "alice", "jobs"), new_key()
    seeds = [keyed(early, f"/{MACHINE}", key, targetPath=str(path)) for _ in range(2)]
    assert [r.headers[REPLY] for r in seeds] == ["miss", "hit"], seeds[0].text
    assert seeds[0].json()["task_id"] == seeds[1].json()["task_id"] != replies[0].json()["task_id"]
    assert keyed(early, f"/{MACHINE}", key, targetPath=str(path) + "x").status_code == 422
    submitted(api, replies[0].json()["task_id"])
    submitted(api, seeds[0].json()["task_id"])
    assert len(jobs_named(site, "alice", name)) == 2  # one per key


def test_a_key_of_compute_reused_on_storage_is_422(storage, api):
    key = new_key()
    assert upload(api, key, f"idem-{uuid.uuid4().hex[:10]}").status_code == 201
    assert keyed(storage, "/xfer-external/download", key, sourcePath="/etc/hosts").status_code == 422


def test_xfer_internal_is_keyed(site, storage, api, home_dir: Path):
    source = home_dir / "a.txt"
    source.write_text("idempotent\n")
    name, key = f"idem-{uuid.uuid4().hex[:10]}", new_key()
    form = {"sourcePath": str(source), "targetPath": str(home_dir / "b.txt"), "jobName": name}
    replies = [keyed(storage, "/xfer-internal/cp", key, **form) for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201], replies[0].text
    assert [r.headers[REPLY] for r in replies] == ["miss", "hit"]
    assert replies[0].json() == replies[1].json() and "task_url" not in replies[1].json()
    assert keyed(storage, "/xfer-internal/cp", key, **{**form, "targetPath": str(home_dir / "c.txt")}
                 ).status_code == 422
    assert keyed(storage, "/xfer-internal/mv", key, **form).status_code == 422
    submitted(api, replies[0].json()["task_id"])
    assert len(jobs_named(site, "alice", name)) == 1


def test_xfer_external_is_keyed(site, storage, home_dir: Path):
    source = home_dir / "d.txt"
    source.write_text("idempotent\n")
    key = new_key()
    downloads = [keyed(storage, "/xfer-external/download", key, sourcePath=str(source)) for _ in range(2)]
    assert [r.status_code for r in downloads] == [201, 201], downloads[0].text
    assert [r.headers[REPLY] for r in downloads] == ["miss", "hit"]
    task_id = downloads[0].json()["task_id"]
    assert downloads[1].json()["task_id"] == task_id
    assert keyed(storage, "/xfer-external/download", key, sourcePath=str(home_dir)).status_code == 422
    key = new_key()
    form = {"sourcePath": "/local/e.txt", "targetPath": str(home_dir)}
    uploads = [keyed(storage, "/xfer-external/upload", key, **form) for _ in range(2)]
    assert [r.headers.get(REPLY) for r in uploads] == ["miss", "hit"], uploads[0].text
    assert uploads[0].json()["task_id"] == uploads[1].json()["task_id"]
    for tid in (task_id, uploads[0].json()["task_id"]):  # leave no staged object behind
        storage.request("POST", "/xfer-external/invalidate", headers={"X-Task-Id": tid})


def test_cors_lets_the_header_through_and_exposes_the_reply(site):
    url = site.env["FIRECREST_URL"]
    preflight = requests.options(f"{url}/compute/jobs/upload", timeout=30, headers={
        "Origin": "https://portal.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Idempotency-Key"})
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    status = requests.get(f"{url}/compute/status", timeout=30,
                          headers={"Authorization": f"Bearer {site.token('alice')}", "Origin": "https://x"})
    assert {"Idempotency-Key-Reply", "Retry-After"} <= {
        h.strip() for h in status.headers["Access-Control-Expose-Headers"].split(",")}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/tasks/idempotency/reservation", "/tasks/idempotency/reply"])
def test_the_key_store_is_not_reachable_through_the_gateway(site, method, path):
    reply = requests.request(method, site.env["FIRECREST_URL"] + path, timeout=30,
                             json={"key": "k", "fingerprint": "ab" * 32},
                             headers={"Authorization": f"Bearer {site.token('alice')}",
                                      "X-Firecrest-Service-Token": "guess"})
    assert reply.status_code in (404, 405), reply.text
