"""Swift as the storage service uses it: temp URLs signed with a container's own key, nothing else."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from swiftclient.client import Connection
from swiftclient.utils import generate_temp_url

from bench.site_resources import children, descendants


@pytest.fixture
def swift(site) -> Iterator[tuple[Connection, str]]:
    conn = Connection(authurl=site.env["SWIFT_AUTH_URL"], user=site.env["SWIFT_USER"], key=site.env["SWIFT_KEY"])
    container = f"tests-{uuid.uuid4().hex[:8]}"
    conn.put_container(container, headers={"X-Container-Meta-Temp-URL-Key": uuid.uuid4().hex})
    yield conn, container
    for obj in conn.get_container(container)[1]:
        conn.delete_object(container, obj["name"])
    conn.delete_container(container)
    conn.close()


def temp_url(conn: Connection, container: str, name: str, method: str, seconds: int | float = 300,
             absolute: bool = False) -> str:
    storage_url, _ = conn.get_auth()
    key = conn.head_container(container)["x-container-meta-temp-url-key"]
    base = urlsplit(storage_url)
    path = f"{base.path}/{container}/{name}"
    return f"{base.scheme}://{base.netloc}" + generate_temp_url(path, seconds, key, method, absolute=absolute)


def test_temp_url_put_then_get_round_trips(swift):
    conn, container = swift
    data = os.urandom(3 * 1024 * 1024 + 17)
    put = requests.put(temp_url(conn, container, "blob.bin", "PUT"), data=data, timeout=30)
    assert put.status_code == 201
    got = requests.get(temp_url(conn, container, "blob.bin", "GET"), timeout=30)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_expired_or_tampered_urls_get_401(swift):
    conn, container = swift
    conn.put_object(container, "file.txt", b"secret")
    expired = temp_url(conn, container, "file.txt", "GET", seconds=int(time.time()) - 10, absolute=True)
    assert requests.get(expired, timeout=10).status_code == 401
    good = temp_url(conn, container, "file.txt", "GET")
    sig = good.split("temp_url_sig=")[1].split("&")[0]
    tampered = good.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    assert requests.get(tampered, timeout=10).status_code == 401
    other_object = good.replace("/file.txt?", "/other.txt?")
    assert requests.get(other_object, timeout=10).status_code == 401
    # A GET URL cannot be used to overwrite the object.
    assert requests.put(good, data=b"overwritten", timeout=10).status_code == 401
    assert requests.get(good, timeout=10).content == b"secret"


def test_hostile_metadata_is_refused_cleanly(swift):
    conn, container = swift
    headers = {f"X-Object-Meta-K{i}": "v" * 100 for i in range(30)}  # ~3 KiB: more than ext4 xattrs hold
    put = requests.put(temp_url(conn, container, "meta.bin", "PUT"), data=b"x", headers=headers, timeout=10)
    assert put.status_code == 400
    # ... and the object server is not wedged by it.
    assert requests.put(temp_url(conn, container, "ok.bin", "PUT"), data=b"ok", timeout=10).status_code == 201


def database_handles(site) -> dict[str, int]:
    """{server: descriptors its processes hold open on a database file} for the account and container servers."""
    tree, found = children(), {}
    for kind in ("account", "container"):
        pid = int((site.dir / "run" / f"swift-{kind}.pid").read_text())
        found[kind] = 0
        for proc in descendants(pid, tree):
            try:
                found[kind] += sum(os.readlink(fd).endswith(".db") for fd in Path(f"/proc/{proc}/fd").iterdir())
            except OSError:  # a descriptor closed (or a worker gone) while read
                continue
    return found


def test_the_servers_close_a_finished_requests_database_file(site, swift):
    """Each request of the account and container servers opens its database; Python 3.11 frees that connection only
    in a full garbage collection, which a worker at rest never ran, so descriptors piled up (launch.py's sweep)."""
    if site.compose:
        pytest.skip("the pid files and /proc are the native site's")
    conn, container = swift
    for i in range(60):
        conn.put_object(container, f"o{i}", b"x")
        conn.get_account()
        conn.head_container(container)
    deadline, handles = time.monotonic() + 60, database_handles(site)
    while any(handles.values()) and time.monotonic() < deadline:
        time.sleep(1)
        handles = database_handles(site)
    assert handles == {"account": 0, "container": 0}
