"""The API documentation service (apidocs/): Swagger UI's page refers to its own files only, by relative URLs (the
gateway publishes it at /docs/), and the spec it serves is docs/openapi.yaml with `servers` set to the gateway."""

from __future__ import annotations

import re
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from test_openapi import SITE

from apidocs.app import create
from apidocs.spec import SPEC, ConfigError, load_docs
from common.config import parse

GATEWAY = "http://127.0.0.1:8000"


class Refs(HTMLParser):
    """Every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


def page_refs(html: str) -> list[str]:
    parser = Refs()
    parser.feed(html)
    return parser.refs


@pytest.fixture(scope="module")
def client():
    return create(parse(SITE, {}), public_url=GATEWAY).test_client()


def test_building_the_app_starts_nothing():
    before = set(threading.enumerate())
    app = create(parse(SITE, {}), public_url=GATEWAY)
    assert set(threading.enumerate()) == before
    assert app.name == "apidocs"


def test_the_page_refers_to_its_own_files_only_by_relative_urls(client):
    reply = client.get("/")
    assert reply.status_code == 200 and reply.mimetype == "text/html"
    html = reply.get_data(as_text=True)
    refs = page_refs(html)
    assert {"swagger-ui.css", "swagger-ui-bundle.js", "init.js"} <= set(refs)
    for ref in refs:  # no scheme, no `//host`, no absolute path: all resolve under /docs/ at the gateway
        assert re.fullmatch(r"[A-Za-z0-9._-]+", ref), ref
        assert client.get(f"/{ref}").status_code == 200, ref
    assert "http" not in html and "//" not in html.replace("<!--", "").replace("-->", "")


def test_init_script_loads_the_services_own_spec_and_no_validator(client):
    script = client.get("/init.js").get_data(as_text=True)
    assert 'new URL("openapi.yaml", here)' in script
    assert "validatorUrl: null" in script
    assert not re.search(r"https?://", script)


def test_every_answer_forbids_scripts_and_styles_from_elsewhere(client):
    for path in ("/", "/openapi.yaml", "/swagger-ui-bundle.js", "/nothing"):
        csp = client.get(path).headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "default-src 'none'" in csp
        assert f"connect-src 'self' {GATEWAY};" in csp  # "Try it out" calls the gateway


def test_the_spec_points_at_the_gateway_and_keeps_every_path(client):
    reply = client.get("/openapi.yaml")
    assert reply.status_code == 200 and reply.mimetype == "application/yaml"
    served = yaml.safe_load(reply.get_data(as_text=True))
    original = yaml.safe_load(SPEC.read_text())
    assert served["servers"] == [{"url": GATEWAY, "description": "this site's gateway"}]
    assert list(served["paths"]) == list(original["paths"])
    assert served["components"]["securitySchemes"] == original["components"]["securitySchemes"]
    assert served["security"] == original["security"]


def test_without_a_public_url_the_server_is_the_gateway_that_served_the_page():
    docs = load_docs("")
    assert yaml.safe_load(docs.spec_yaml)["servers"][0]["url"] == "/"
    assert "connect-src 'self';" in docs.csp


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://x/'; script-src *", "http://x\nSet-Cookie: a=b",
                                 "ftp://x", "http://x/?q=1", "//x"])
def test_a_public_url_that_would_reach_the_header_or_the_spec_unchecked_is_refused(url):
    with pytest.raises(ConfigError):
        load_docs(url)


def test_a_spec_without_paths_is_refused(tmp_path: Path):
    bad = tmp_path / "openapi.yaml"
    bad.write_text("openapi: 3.1.0\n")
    with pytest.raises(ConfigError):
        load_docs(GATEWAY, bad)


@pytest.mark.parametrize("path", ["/index.css", "/VERSION", "/LICENSE", "/..%2fpyproject.toml", "/../apidocs/app.py",
                                  "/static/init.js", "/swagger-ui.js.map", "/dist/swagger-ui.css"])
def test_only_the_pages_files_are_served(client, path):
    reply = client.get(path)
    assert reply.status_code == 404
    assert reply.get_json() == {"description": reply.get_json()["description"]}


def test_an_edited_spec_is_served_without_a_restart_and_a_broken_edit_keeps_the_last_good_one(tmp_path: Path):
    spec = tmp_path / "openapi.yaml"
    spec.write_text("openapi: 3.1.0\npaths:\n  /a: {}\n")
    client = create(parse(SITE, {}), public_url=GATEWAY, spec=spec).test_client()

    def paths() -> list[str]:
        return list(yaml.safe_load(client.get("/openapi.yaml").get_data(as_text=True))["paths"])

    assert paths() == ["/a"]
    spec.write_text("openapi: 3.1.0\npaths:\n  /a: {}\n  /b: {}\n")
    assert paths() == ["/a", "/b"]
    spec.write_text("openapi: 3.1.0\npaths: [unclosed\n")
    assert paths() == ["/a", "/b"]
    spec.write_text("openapi: 3.1.0\n")  # no paths
    assert paths() == ["/a", "/b"]
    spec.write_bytes(b"openapi: 3.1.0\npaths: {\xff: 1}\n")
    assert paths() == ["/a", "/b"]
    spec.unlink()
    assert paths() == ["/a", "/b"] and client.get("/").status_code == 200
    spec.write_text("openapi: 3.1.0\npaths:\n  /c: {}\n")
    assert paths() == ["/c"]


def test_the_gateways_unstripped_docs_path_redirects_to_the_page(client):
    reply = client.get("/docs")
    assert reply.status_code == 301
    assert reply.headers["Location"] == "docs/"  # relative: /docs -> /docs/ at the gateway


def test_only_reading(client):
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/").status_code == 405
        assert getattr(client, method)("/openapi.yaml").status_code == 405
    assert client.head("/").status_code == 200
