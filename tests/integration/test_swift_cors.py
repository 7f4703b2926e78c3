"""CORS on Swift for the portal only: its page PUTs a file to an upload's temp URL from the browser (a preflighted
cross-origin request). Exactly the portal's origin is allowed; any other origin's preflight is refused and no
answer names it in Access-Control-Allow-Origin (the browser then withholds the answer from that page)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from swiftclient.client import Connection
from swiftclient.utils import generate_temp_url

OTHERS = ["http://evil.example", "http://127.0.0.1:8000", "http://127.0.0.1:5107.evil.example",
          "https://127.0.0.1:5107", "http://localhost:5107", "null"]


@pytest.fixture
def origin(site) -> str:
    if site.compose:
        pytest.skip("the portal (and so its CORS origin) is the native site's")
    return site.env["FIRECREST_PORTAL_URL"].rstrip("/")


@pytest.fixture
def put_url(site) -> Iterator[str]:
    """A temp URL to PUT one object, in a container of its own (as the storage service makes them)."""
    conn = Connection(authurl=site.env["SWIFT_AUTH_URL"], user=site.env["SWIFT_USER"], key=site.env["SWIFT_KEY"])
    container, key = f"tests-cors-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn.put_container(container, headers={"X-Container-Meta-Temp-URL-Key": key})
    base = urlsplit(conn.get_auth()[0])
    yield f"{base.scheme}://{base.netloc}" + generate_temp_url(f"{base.path}/{container}/f.bin", 300, key, "PUT")
    for obj in conn.get_container(container)[1]:
        conn.delete_object(container, obj["name"])
    conn.delete_container(container)
    conn.close()


def preflight(url: str, origin: str) -> requests.Response:
    return requests.options(url, timeout=30, headers={"Origin": origin, "Access-Control-Request-Method": "PUT",
                                                      "Access-Control-Request-Headers": "content-type"})


def test_the_portals_preflight_is_allowed(put_url: str, origin: str) -> None:
    r = preflight(put_url, origin)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    assert "content-type" in r.headers["Access-Control-Allow-Headers"].lower()


def test_the_portals_put_is_readable_by_its_page(put_url: str, origin: str) -> None:
    r = requests.put(put_url, data=b"from the browser", headers={"Origin": origin}, timeout=30)
    assert r.status_code == 201
    assert r.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("other", OTHERS)
def test_no_other_origin_is_allowed(put_url: str, origin: str, other: str) -> None:
    r = preflight(put_url, other)
    assert r.status_code == 401
    assert "Access-Control-Allow-Origin" not in r.headers
    # A simple request is not preflighted: Swift serves it, but names no other origin, so no page reads it.
    put = requests.put(put_url, data=b"x", headers={"Origin": other}, timeout=30)
    assert "Access-Control-Allow-Origin" not in put.headers
