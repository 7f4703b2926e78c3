"""docs/openapi.yaml and the services' routes agree: every public route is documented and nothing else is."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# Public services and the gateway prefix their routes are published under (kong/kong.yml strips it).
PUBLIC = {
    "status": "/status",
    "utilities": "/utilities",
    "tasks": "/tasks",
    "compute": "/compute",
    "storage": "/storage",
}
# Routes of public services that are internal: never routed by the gateway, see kong/kong.yml (the tasks service
# is GET-only there; the services create, update, retire and claim tasks directly).
INTERNAL = {
    ("post", "/tasks"),
    ("put", "/tasks/{tid}"),
    ("delete", "/tasks/{tid}"),
    ("post", "/tasks/claim"),
}
# Routes the gateway itself adds (kong/kong.yml): the early `/jobs/{machine}` at the root, passed unstripped to
# compute's `/jobs/<name>` (POST) and `/jobs/<jobid>` (GET).
GATEWAY_ALIASES = {("get", "/jobs/{machine}"), ("post", "/jobs/{machine}")}

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
    mp.delenv("FIRECREST_INTERNAL_TASKS_URL", raising=False)  # no task recovery thread when compute is imported
    from common.config import site

    site.cache_clear()
    found = set()
    for name, prefix in PUBLIC.items():
        app = importlib.import_module(f"{name}.app").app
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            # A service's root is published as the bare prefix (`/tasks`, which the gateway passes on as `/`).
            path = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).rstrip("/")
            found |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    site.cache_clear()
    mp.undo()
    return found


def test_every_route_is_documented_and_nothing_else(routes):
    spec = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert routes >= INTERNAL, "an internal route is gone: update INTERNAL"
    assert documented == (routes - INTERNAL) | GATEWAY_ALIASES


def test_document_is_openapi_3_1():
    spec = yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.1")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} has no responses"
