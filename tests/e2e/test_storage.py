"""External transfers against the real Swift and Slurm, as a client sees them: the task's codes, the returned
command run the way pyfirecrest runs it, temp URLs used with plain HTTP, and the files on the cluster."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from conftest import user_ids
from gateway_client import Api
from swiftclient.client import Connection, get_auth
from swiftclient.utils import generate_temp_url

from common.config import parse_storage
from storage.swift import Staging

SERVICE = "storage"  # the `api` and `bob_api` fixtures' service (tests/conftest.py)

MiB = 1024 * 1024


def service_staging(site) -> Staging:
    """The service's own view of Swift (its credentials and settings), to look at what is staged, through Swift
    as this machine reaches it."""
    env = {**os.environ, **site.env, "FIRECREST_STACK_DIR": str(site.dir)}
    config = parse_storage(site.site_file.read_text(), env)
    return Staging(replace(config, auth_url=site.env["SWIFT_AUTH_URL"], account_url=swift_account_url(site)))


def swift_account_url(site) -> str:
    """The storage account's URL as this machine reaches it: Swift answers auth with the URL the services use
    (on the compose site the proxy's name on the compose networks)."""
    url, _ = get_auth(site.env["SWIFT_AUTH_URL"], site.env["SWIFT_USER"], site.env["SWIFT_KEY"])
    auth = urlsplit(site.env["SWIFT_AUTH_URL"])
    return urlunsplit(urlsplit(url)._replace(scheme=auth.scheme, netloc=auth.netloc))


def swift_connection(site) -> Connection:
    """The storage service's account, as this machine reaches it."""
    return Connection(authurl=site.env["SWIFT_AUTH_URL"], user=site.env["SWIFT_USER"], key=site.env["SWIFT_KEY"],
                      os_options={"object_storage_url": swift_account_url(site)})


@pytest.fixture(scope="module")
def staging(site) -> Staging:
    return service_staging(site)


def unstaged(staging: Staging, task_id: str) -> bool:
    """The task's objects are removed (right after its outcome is recorded), and with them its area (but for an
    invalidated download's, which stays empty for its URL's lifetime)."""
    deadline = time.monotonic() + 10
    while staging.listing(task_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not staging.listing(task_id)


def random_file(path: Path, size: int) -> str:
    """`size` bytes no two segments of which are alike; returns the sha256."""
    block = os.urandom(7 * MiB + 13)
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def start_upload(api: Api, source: str, target: str) -> tuple[str, dict]:
    reply = api.post("/xfer-external/upload", sourcePath=source, targetPath=target)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["success"] == "Task created" and body["task_url"] == f"/tasks/{body['task_id']}"
    task = api.wait(body["task_id"], timeout=30, until="111")
    assert task["status"] == "111", task
    return body["task_id"], task


def run_command(command: str) -> subprocess.CompletedProcess:
    """As pyfirecrest's ExternalUpload.finish_upload: shlex.split, then subprocess without a shell."""
    return subprocess.run(shlex.split(command), capture_output=True, timeout=600)


def upload(api: Api, local: Path, target: str, timeout: float = 120) -> dict:
    task_id, task = start_upload(api, str(local), target)
    done = run_command(task["data"]["msg"]["command"])
    assert done.returncode == 0, done.stderr
    return api.wait(task_id, timeout=timeout, until="114")


def download(api: Api, source: str, timeout: float = 120) -> tuple[str, dict]:
    reply = api.post("/xfer-external/download", sourcePath=source)
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["task_id"]
    return task_id, api.wait(task_id, timeout=timeout, until="117")


def fetch(url: str, dest: Path) -> None:
    with requests.get(url, stream=True, timeout=60) as reply:
        assert reply.status_code == 200, reply.status_code
        with dest.open("wb") as f:
            for chunk in reply.iter_content(8 * MiB):
                f.write(chunk)


# -- round trips ----------------------------------------------------------------------------------------------


def test_round_trip_100mb(api, staging, workdir, home_dir):
    local = workdir / "data.bin"
    digest = random_file(local, 100 * MiB + 7)
    task = upload(api, local, str(home_dir))
    assert task["status"] == "114", task
    assert task["data"] == {"source": "data.bin", "target": f"{home_dir}/data.bin", "system_name": "cluster"}
    landed = home_dir / "data.bin"
    assert sha256(landed) == digest
    assert landed.stat().st_uid == user_ids("alice")[0]  # written by alice's own job
    assert unstaged(staging, task["task_id"])  # the staged object is removed
    assert not [p for p in home_dir.iterdir() if p.name.endswith(".part")]

    task_id, task = download(api, str(landed))
    assert task["status"] == "117", task
    assert task["data"]["source"] == str(landed) and task["data"]["system_name"] == "cluster"
    back = workdir / "back.bin"
    fetch(task["data"]["url"], back)
    assert sha256(back) == digest


@pytest.mark.slow
def test_round_trip_6gib(api, staging, workdir, home_dir):
    """Over Swift's 5 GiB object limit both ways: segments and a static large object written by the service."""
    local = workdir / "big.bin"
    size = 6 * 1024 * MiB + 12345
    digest = random_file(local, size)
    task = upload(api, local, str(home_dir / "big-copy.bin"), timeout=600)
    assert task["status"] == "114", task
    local.unlink()  # the disk holds each copy only as long as needed
    landed = home_dir / "big-copy.bin"
    assert landed.stat().st_size == size
    assert sha256(landed) == digest

    task_id, task = download(api, str(landed), timeout=600)
    assert task["status"] == "117", task
    head = staging.head(task_id, "big-copy.bin")
    assert head["x-static-large-object"] == "True" and int(head["content-length"]) == size
    landed.unlink()
    back = workdir / "back.bin"
    fetch(task["data"]["url"], back)
    assert back.stat().st_size == size and sha256(back) == digest
    assert api.request("POST", "/xfer-external/invalidate", machine=None,
                       headers={"X-Task-Id": task_id}).status_code == 201
    assert unstaged(staging, task_id)  # segments too


def test_upload_with_the_parameters(api, workdir, home_dir):
    """A program may do the PUT itself from `parameters` instead of running the command."""
    local = workdir / "small.txt"
    local.write_bytes(b"hello from a python client\n")
    task_id, task = start_upload(api, str(local), str(home_dir / "renamed.txt"))
    p = task["data"]["msg"]["parameters"]
    assert p["method"] == "PUT" and p["files"] == str(local)
    reply = requests.request(p["method"], p["url"], data=local.read_bytes(), headers=p["headers"], timeout=30)
    assert reply.status_code == 201
    assert api.wait(task_id, until="114")["status"] == "114"
    assert (home_dir / "renamed.txt").read_bytes() == b"hello from a python client\n"


def test_upload_replaces_an_existing_file_only_when_verified(api, workdir, home_dir):
    target = home_dir / "f.txt"
    target.write_text("old")
    os.chown(target, *user_ids("alice"))
    local = workdir / "f.txt"
    local.write_text("new contents")
    assert upload(api, local, str(home_dir))["status"] == "114"
    assert target.read_text() == "new contents"


def test_the_task_reports_each_step(api, workdir, home_dir):
    local = workdir / "steps.bin"
    random_file(local, 3 * MiB)
    task_id, task = start_upload(api, str(local), str(home_dir))
    assert task["data"]["msg"]["large_files"]["max_segments"] == 1000
    assert run_command(task["data"]["msg"]["command"]).returncode == 0
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "114" not in seen:
        seen.add(api.task(task_id)["status"])
        time.sleep(0.02)
    assert "114" in seen and seen <= {"111", "112", "113", "114"}


# -- bad input ------------------------------------------------------------------------------------------------


def test_an_upload_that_announces_missing_segments_fails_cleanly(api, staging, workdir, home_dir):
    """The client says 3 segments but sent 1: 115 with the reason, nothing written, nothing left staged."""
    local = workdir / "seg.bin"
    local.write_bytes(b"x" * 1000)
    task_id, task = start_upload(api, str(local), str(home_dir))
    large = task["data"]["msg"]["large_files"]
    assert requests.put(large["segment_url"].format(index=0), data=b"x" * 1000, timeout=30).status_code == 201
    marker = requests.put(task["data"]["msg"]["parameters"]["url"], data=b"", timeout=30,
                          headers={"X-Object-Meta-Segments": "3"})
    assert marker.status_code == 201
    task = api.wait(task_id, until="114")
    assert task["status"] == "115"
    assert "announced 3 segments, but 1 arrived" in task["data"]["msg"]
    assert not (home_dir / "seg.bin").exists()
    assert unstaged(staging, task_id)


@pytest.mark.parametrize(("form", "error"), [
    ({"targetPath": "/home/alice"}, "'sourcePath' not specified"),
    ({"sourcePath": "/tmp/x"}, "'targetPath' not specified"),
    ({"sourcePath": "/tmp/", "targetPath": "/home/alice"}, "'sourcePath' must name a file"),
    ({"sourcePath": "..", "targetPath": "/home/alice"}, "'sourcePath' must name a file"),
    ({"sourcePath": "a\nb", "targetPath": "/home/alice"}, "'sourcePath' has invalid char"),
    ({"sourcePath": "x", "targetPath": "/home/alice/" + "d" * 5000}, "'targetPath' is longer than 4096 characters"),
])
def test_upload_bad_parameters(api, form, error):
    reply = api.post("/xfer-external/upload", **form)
    assert reply.status_code == 400
    assert reply.json()["error"] == error


@pytest.mark.parametrize(("target", "header"), [
    ("/home/alice/no/such/dir/f", "X-Invalid-Path"),
    ("/home/bob", "X-Permission-Denied"),
    ("/home/bob/f.txt", "X-Permission-Denied"),
])
def test_upload_target_must_be_writable(api, target, header):
    reply = api.post("/xfer-external/upload", sourcePath="/tmp/f.txt", targetPath=target)
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"description": "Failed to upload file", "error": "'targetPath' directory not allowed"}
    assert header in reply.headers


def test_unknown_or_missing_machine(api):
    reply = api.post("/xfer-external/download", machine="nowhere", sourcePath="/etc/hosts")
    assert reply.status_code == 400
    assert "X-Machine-Does-Not-Exists" in reply.headers and "X-Machine-Does-Not-Exist" in reply.headers
    reply = api.post("/xfer-external/upload", machine=None, sourcePath="/tmp/x", targetPath="/home/alice")
    assert reply.status_code == 400 and reply.json() == {"description": "No machine name given"}


@pytest.mark.parametrize(("source", "header"), [
    ("/home/alice/no-such-file", "X-Invalid-Path"),
    ("/home/alice", "X-A-Directory"),
    ("/etc/shadow", "X-Permission-Denied"),
])
def test_download_source_must_be_a_readable_file(api, source, header):
    reply = api.post("/xfer-external/download", sourcePath=source)
    assert reply.status_code == 400, reply.text
    assert reply.json()["description"] == "sourcePath error"
    assert header in reply.headers


def test_invalidate(api, bob_api, home_dir):
    (home_dir / "inv.txt").write_text("invalidate me")
    task_id, task = download(api, str(home_dir / "inv.txt"))
    url = task["data"]["url"]
    assert requests.get(url, timeout=30).content == b"invalidate me"

    def invalidate(who: Api, value: str | None) -> requests.Response:
        headers = {} if value is None else {"X-Task-Id": value}
        return who.request("POST", "/xfer-external/invalidate", machine=None, headers=headers)

    assert invalidate(api, None).json() == {"description": "Failed to invalidate URL",
                                            "error": "Header X-Task-Id missing"}
    assert invalidate(api, "../x").status_code == 400
    other = invalidate(bob_api, task_id)  # bob cannot invalidate (or learn anything of) alice's task
    assert other.status_code == 400 and other.json()["error"] == "Invalid X-Task-Id"
    assert requests.get(url, timeout=30).status_code == 200
    reply = invalidate(api, task_id)
    assert reply.status_code == 201 and reply.json() == {"success": "URL invalidated successfully"}
    assert requests.get(url, timeout=30).status_code == 404
    assert api.task(task_id)["status"] == "302"


# -- temp URLs and users --------------------------------------------------------------------------------------


def test_urls_are_bound_to_object_method_and_time(api, staging, workdir, home_dir):
    (home_dir / "u.txt").write_text("bound")
    task_id, task = download(api, str(home_dir / "u.txt"))
    url = task["data"]["url"]
    sig = url.split("temp_url_sig=")[1][:64]
    tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert requests.get(tampered, timeout=30).status_code == 401
    assert requests.get(url.replace("/u.txt?", "/other.txt?"), timeout=30).status_code == 401
    assert requests.get(url.replace(f"/transfer-{task_id}/", f"/transfer-{'0' * 32}/"), timeout=30).status_code == 401
    assert requests.put(url, data=b"overwrite", timeout=30).status_code == 401  # a GET URL cannot write
    path = urlsplit(url).path
    query = generate_temp_url(path, int(time.time()) - 10, staging.url_key(task_id), "GET", absolute=True)
    assert requests.get(url.split("/v1/")[0] + query, timeout=30).status_code == 401  # expired
    assert requests.get(url, timeout=30).content == b"bound"


def test_an_upload_url_writes_only_into_its_own_task(api, bob_api, staging, workdir, home_dir):
    local = workdir / "mine.txt"
    local.write_text("mine")
    task_id, task = start_upload(api, str(local), str(home_dir))
    bob_task, _ = start_upload(bob_api, "/tmp/theirs.txt", "/home/bob")
    put_url = task["data"]["msg"]["parameters"]["url"]
    segment_url = task["data"]["msg"]["large_files"]["segment_url"].format(index=0)
    for url in (put_url, segment_url):
        into_bobs = url.replace(f"/transfer-{task_id}/", f"/transfer-{bob_task}/")
        assert requests.put(into_bobs, data=b"x", timeout=30).status_code == 401
        other_task = url.replace(f"/transfer-{task_id}/", f"/transfer-{'0' * 32}/")
        assert requests.put(other_task, data=b"x", timeout=30).status_code == 401
        assert requests.get(url, timeout=30).status_code == 401  # and cannot read
    assert requests.put(put_url.replace("/mine.txt?", "/other.txt?"), data=b"x", timeout=30).status_code == 401
    assert staging.listing(bob_task) == []
    api.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": task_id})
    bob_api.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": bob_task})


def test_bob_sees_nothing_of_alices_transfers(api, bob_api, home_dir):
    (home_dir / "secret.txt").write_text("alice only")
    task_id, _ = download(api, str(home_dir / "secret.txt"))
    reply = requests.get(f"{api.site.env['FIRECREST_URL']}/tasks/{task_id}", timeout=30,
                         headers={"Authorization": f"Bearer {api.site.token('bob')}"})
    assert reply.status_code == 403
    listing = requests.get(f"{api.site.env['FIRECREST_URL']}/tasks", timeout=30,
                           headers={"Authorization": f"Bearer {api.site.token('bob')}"})
    assert task_id not in listing.text
    # bob's own download of alice's file is refused (her home is not his to read)
    os.chmod(home_dir / "secret.txt", 0o600)
    os.chown(home_dir / "secret.txt", *user_ids("alice"))
    reply = bob_api.post("/xfer-external/download", sourcePath=str(home_dir / "secret.txt"))
    assert reply.status_code == 400 and "X-Permission-Denied" in reply.headers


def test_swift_credentials_never_reach_the_client(api, site, staging, workdir, home_dir):
    local = workdir / "k.txt"
    local.write_text("k")
    task_id, task = start_upload(api, str(local), str(home_dir))
    text = str(task)
    conn = swift_connection(site)
    area = conn.head_container(f"transfer-{task_id}")
    keys = [area["x-container-meta-temp-url-key"], area["x-container-meta-temp-url-key-2"]]
    assert conn.head_account().get("x-account-meta-temp-url-key") is None  # nothing signs for every object
    assert keys[0] == staging.url_key(task_id) and keys[1] == staging.url_key(task_id, job=True)
    assert not [key for key in keys if key and key in text]
    assert site.env["SWIFT_KEY"] not in text
    api.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": task_id})


def test_invalidated_while_the_push_runs(api, staging, workdir, home_dir):
    """Invalidated at 116: the task stays deleted when the job ends, and the pushed object is not kept."""
    source = home_dir / "inflight.bin"
    random_file(source, 300 * MiB)
    reply = api.post("/xfer-external/download", sourcePath=str(source))
    task_id = reply.json()["task_id"]
    assert api.wait(task_id, until="116")["status"] == "116"
    invalidated = api.request("POST", "/xfer-external/invalidate", machine=None, headers={"X-Task-Id": task_id})
    assert invalidated.status_code == 201
    time.sleep(5)  # the push job finishes meanwhile
    assert api.task(task_id)["status"] == "302"
    assert unstaged(staging, task_id)


def test_status(api):
    reply = api.get("/status", machine=None)
    assert reply.status_code == 200 and reply.json() == {"success": "ack"}
    hostile = requests.get(f"{api.base}/status", headers={"Authorization": "Bearer $(id)'\"`"}, timeout=30)
    assert hostile.status_code == 401
