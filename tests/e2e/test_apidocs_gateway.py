"""The API documentation through the gateway, as a browser gets it: /docs/ is public (no token), read-only, made of
the site's own files (no CDN), and its spec lists every path of docs/openapi.yaml with the gateway as its server.
The compose site does not deploy the documentation: there the gateway answers 503 "Service not deployed"."""

from __future__ import annotations

import http.client
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
CDN = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")  # any absolute or scheme-relative URL


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


@pytest.fixture(scope="module")
def docs(site) -> str:
    if site.compose:
        reply = requests.get(f"{site.env['FIRECREST_URL']}/docs/", timeout=30)
        assert (reply.status_code, reply.json()) == (503, {"description": "Service not deployed"})
        pytest.skip("the compose site does not deploy the API documentation (its gateway answers 503)")
    return f"{site.env['FIRECREST_URL']}/docs/"


def test_the_page_needs_no_token_and_uses_only_its_own_files(docs):
    reply = requests.get(docs, timeout=30)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["X-Request-ID"]
    assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
    assert not CDN.search(reply.text), "the page names another host"
    parser = Refs()
    parser.feed(reply.text)
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    assert any(r.endswith(".js") for r in parser.refs) and any(r.endswith(".css") for r in parser.refs)
    for ref in parser.refs:
        asset = requests.get(docs + ref, timeout=30)
        assert asset.status_code == 200, ref
        assert asset.headers["Content-Type"].startswith(kinds[Path(ref).suffix]), ref


def test_docs_without_the_slash_redirects_to_the_page(docs):
    reply = requests.get(docs.rstrip("/"), allow_redirects=False, timeout=30)
    assert reply.status_code == 301 and reply.headers["Location"] == "docs/"
    assert requests.get(docs.rstrip("/"), timeout=30).url == docs


def test_the_spec_lists_every_path_with_the_gateway_as_its_server(site, docs):
    reply = requests.get(docs + "openapi.yaml", timeout=30)
    assert reply.status_code == 200
    served = yaml.safe_load(reply.text)
    original = yaml.safe_load(SPEC.read_text())
    assert list(served["paths"]) == list(original["paths"])
    assert [s["url"] for s in served["servers"]] == [site.env["FIRECREST_URL"]]
    assert served["components"]["securitySchemes"] == original["components"]["securitySchemes"]


def test_a_token_is_neither_needed_nor_looked_at(site, docs):
    for authorization in (f"Bearer {site.token('alice')}", "Bearer not-a-token", "Basic YWxpY2U6eA=="):
        assert requests.get(docs, headers={"Authorization": authorization}, timeout=30).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["", "openapi.yaml"])
def test_only_get_and_head(docs, method, path):
    reply = requests.request(method, docs + path, timeout=30)
    assert reply.status_code == 405
    assert reply.json() == {"description": "Method not allowed"}
    assert set(reply.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_head(docs):
    reply = requests.head(docs + "openapi.yaml", timeout=30)
    assert reply.status_code == 200 and reply.content == b""


@pytest.mark.parametrize(("path", "status"), [
    ("metrics", 404),  # the service's metrics stay internal
    ("index.css", 404),  # files of the package the page does not use
    ("VERSION", 404),
    ("static/init.js", 404),
    ("../utilities/whoami", 400),  # non-canonical paths: refused by the gateway before routing
    ("%2e%2e/status/systems", 400),
    (".%2fopenapi.yaml", 400),
    ("/openapi.yaml", 400),
])
def test_nothing_else_is_reachable(docs, path, status):
    """Sent as written (requests would resolve the dot segments itself)."""
    parts = urlsplit(docs)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    connection.request("GET", parts.path + path)
    reply = connection.getresponse()
    body = reply.read()
    connection.close()
    assert reply.status == status, body
    assert "description" in json.loads(body)


def test_the_apis_routes_still_need_a_token(site, docs):
    base = site.env["FIRECREST_URL"]
    assert requests.get(f"{base}/utilities/whoami", headers={"X-Machine-Name": "cluster"},
                        timeout=30).status_code == 401
    assert requests.get(f"{base}/docsx", timeout=30).status_code == 404
