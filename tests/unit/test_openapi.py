"""docs/openapi.yaml and the services' routes agree: every public route is documented and nothing else is."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# Public services and the gateway prefix their routes are published under (kong/kong.yml strips it).
PUBLIC = {"status": "/status", "utilities": "/utilities"}

SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
"""


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> set[tuple[str, str]]:
    site_file = tmp_path_factory.mktemp("site") / "site.yaml"
    site_file.write_text(SITE)
    mp = pytest.MonkeyPatch()
    mp.setenv("FIRECREST_SITE_FILE", str(site_file))
    from common.config import site

    site.cache_clear()
    found = set()
    for name, prefix in PUBLIC.items():
        app = importlib.import_module(f"{name}.app").app
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            path = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            found |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    site.cache_clear()
    mp.undo()
    return found


def test_every_route_is_documented_and_nothing_else(routes):
    spec = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert documented == routes


def test_document_is_openapi_3_1():
    spec = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.1")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} has no responses"
