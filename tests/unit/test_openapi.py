"""docs/openapi.yaml and the services' routes agree: every public route is documented and nothing else is; every
`$ref` resolves; the storage routes answer as the contract says (the `data` of a storage task at each status:
test_storage_external.py)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from common.config import Site, parse

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
    ("get", "/tasks/unfinished/{service}"),  # a service's bound on its unfinished tasks (storage's transfers)
    ("post", "/tasks/idempotency/reservation"),  # Idempotency-Key reservations (tasks/idempotency_routes.py)
    ("put", "/tasks/idempotency/reply"),
    ("delete", "/tasks/idempotency/reservation"),
    ("post", "/tasks/events/jobs/claim"),  # job polls handed to compute processes (tasks/events_routes.py)
    ("post", "/tasks/events/jobs/publish"),
    *(("get", f"{prefix}/metrics") for prefix in PUBLIC.values()),  # the site's monitoring (README, Metrics)
}
# Routes the gateway itself adds (kong/kong.yml): the early `/jobs/{machine}` at the root, passed unstripped to
# compute's `/jobs/<name>` (POST) and `/jobs/<jobid>` (GET).
GATEWAY_ALIASES = {("get", "/jobs/{machine}"), ("post", "/jobs/{machine}")}
# The public API documentation (apidocs/, published under /docs/ with the prefix stripped): its page (`/`) and the
# page's files (`/<name>`, which `/openapi.yaml` is one of); `/docs` only redirects to `/docs/`.
DOCS_ROUTES = {"/": ("get", "/docs/"), "/<name>": ("get", "/docs/{name}"), "/openapi.yaml": ("get", "/docs/{name}"),
               "/docs": None}

SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
"""

# The schema of a storage task's `data` at each status, as the storage routes of the spec document it.
STORAGE_TASK_DATA = {
    ("upload", "111"): "StorageUploadOffer",
    ("upload", "112"): "StorageUploadResult",
    ("upload", "113"): "StorageUploadResult",
    ("upload", "114"): "StorageUploadResult",
    ("upload", "115"): "StorageUploadFailure",
    ("upload", "400"): "StorageUploadFailure",
    ("download", "116"): "StorageDownloadProgress",
    ("download", "117"): "StorageDownloadResult",
    ("download", "118"): "StorageDownloadFailure",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docs/openapi.yaml").read_text())


@pytest.fixture(scope="module")
def test_site() -> Site:
    return parse(SITE, {})


@pytest.fixture(scope="module")
def routes(test_site) -> set[tuple[str, str]]:
    found = set()
    for name, prefix in PUBLIC.items():
        app = importlib.import_module(f"{name}.app").create(site=test_site)
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            # A service's root is published as the bare prefix (`/tasks`, which the gateway passes on as `/`).
            path = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).rstrip("/")
            found |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    docs = importlib.import_module("apidocs.routes").routes
    app = Flask("docs")
    app.register_blueprint(docs)
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            assert rule.rule in DOCS_ROUTES, f"{rule.rule}: a new route of apidocs, document it (or DOCS_ROUTES)"
            found |= {DOCS_ROUTES[rule.rule]} - {None}
    return found


def test_every_route_is_documented_and_nothing_else(routes, spec):
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert routes >= INTERNAL, "an internal route is gone: update INTERNAL"
    assert documented == (routes - INTERNAL) | GATEWAY_ALIASES


def test_document_is_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} has no responses"


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only local references"
    node: Any = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_ref_resolves(spec):
    for ref in set(refs(spec)):
        resolve(spec, ref)


# ---------------------------------------------------------------------------------------------------------------
# Storage routes


def storage_operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        if path.startswith("/storage/") and "post" in ops:
            yield path, ops["post"]


def reply_schema(spec: dict[str, Any], op: dict[str, Any], status: str) -> dict[str, Any]:
    response = op["responses"][status]
    if "$ref" in response:
        response = resolve(spec, response["$ref"])
    schema = response["content"]["application/json"]["schema"]
    return resolve(spec, schema["$ref"]) if "$ref" in schema else schema


def test_storage_routes_answer_201_and_their_errors(spec):
    """Contract quirk 15.3: every storage endpoint, invalidate included, answers 201."""
    operations = dict(storage_operations(spec))
    assert len(operations) == 9  # upload, download, invalidate, and six xfer-internal operations
    for path, op in operations.items():
        assert {"201", "400", "401", "403", "503"} <= set(op["responses"]), path
        bounded = path in ("/storage/xfer-external/upload", "/storage/xfer-external/download")  # 429: too many
        keyed = {"409", "422"} if path != "/storage/xfer-external/invalidate" else set()  # Idempotency-Key
        assert keyed <= set(op["responses"]), path
        allowed = {"201", "400", "401", "403", "503"} | keyed | ({"429"} if bounded else set())
        assert set(op["responses"]) <= allowed, path
        assert ("429" in op["responses"]) == bounded, path
        if path != "/storage/xfer-external/invalidate":
            assert {"$ref": "#/components/parameters/MachineName"} in op["parameters"], path
    invalidate = operations["/storage/xfer-external/invalidate"]
    assert [p["name"] for p in invalidate["parameters"]] == ["X-Task-Id"]


def test_storage_task_envelopes(spec):
    """External transfers reply with a storage task and its `task_url`; xfer-internal with compute's task id and no
    `task_url` (contract quirk 15.9)."""
    for path, op in storage_operations(spec):
        schema = reply_schema(spec, op, "201")
        if path.startswith("/storage/xfer-internal/"):
            assert schema["required"] == ["success", "task_id"], path
            assert "task_url" not in schema["properties"], path
            assert schema["not"] == {"required": ["task_url"]}, path
        elif path != "/storage/xfer-external/invalidate":
            assert "task_url" in schema["required"], path


def test_unknown_machine_headers_are_documented_on_storage(spec):
    for path, op in storage_operations(spec):
        if path == "/storage/xfer-external/invalidate":
            continue
        response = resolve(spec, op["responses"]["400"]["$ref"])
        assert {"X-Machine-Does-Not-Exist", "X-Machine-Does-Not-Exists"} <= set(response["headers"]), path
        if path.startswith("/storage/xfer-internal/"):
            assert "X-Sbatch-Error" in response["headers"], path


def test_each_operation_names_the_scope_the_site_requires(spec):
    """The `security` of every operation is what the site file's auth.scopes make the gateway and services check."""
    scopes = yaml.safe_load((REPO / "deploy" / "local" / "site.yaml").read_text())["auth"]["scopes"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "delete", "head", "patch"):
                continue
            if path.startswith("/docs/"):  # the documentation is public: no token, no scope
                assert op["security"] == [] and "403" not in op["responses"], (method, path)
                continue
            needed = scopes[op["tags"][0]]["read" if method in ("get", "head") else "change"]
            assert op["security"] == [{"bearer": [needed]}], (method, path)
            assert "403" in op["responses"], (method, path)


def media(spec: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of every request body and response content of the media type `kind`."""
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for body in bodies:
                body = resolve(spec, body["$ref"]) if "$ref" in body else body
                if kind in body.get("content", {}):
                    yield f"{method} {path}", body["content"][kind]["schema"]


def test_file_parts_are_properties_of_the_body_itself(spec):
    """A file part only inside an `allOf` is sent as a plain field by clients that read the schema (schemathesis
    did: `No batch file part`)."""
    for where, schema in media(spec, "multipart/form-data"):
        schema = resolve(spec, schema["$ref"]) if "$ref" in schema else schema
        for part in schema.get("allOf", []):
            part = resolve(spec, part["$ref"]) if "$ref" in part else part
            for name, prop in part.get("properties", {}).items():
                if prop.get("contentMediaType") == "application/octet-stream":
                    assert name in schema.get("properties", {}), (where, name)


def test_event_streams_describe_each_event(spec):
    """A `text/event-stream` schema describes one event (OpenAPI before 3.2), not the stream as a string."""
    streams = dict(media(spec, "text/event-stream"))
    assert len(streams) == 3
    for where, schema in streams.items():
        event = resolve(spec, schema["$ref"])
        assert {"$ref": "#/components/schemas/StreamEvent"} in event["allOf"], where
