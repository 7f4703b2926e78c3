"""docs/openapi.yaml and the services' routes agree: every public route is documented and nothing else is; every
`$ref` resolves; the storage routes answer as the contract says, and the `data` a storage task carries at each
status is exactly what the spec's schemas describe (the transfer state machine driven with fakes for the task
store, Swift and the cluster)."""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jsonschema
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
def site_env(tmp_path_factory) -> Iterator[None]:
    site_file = tmp_path_factory.mktemp("site") / "site.yaml"
    site_file.write_text(SITE)
    mp = pytest.MonkeyPatch()
    mp.setenv("FIRECREST_SITE_FILE", str(site_file))
    mp.delenv("FIRECREST_INTERNAL_TASKS_URL", raising=False)  # no task recovery thread when compute is imported
    from common.config import site

    site.cache_clear()
    yield
    site.cache_clear()
    mp.undo()


@pytest.fixture(scope="module")
def routes(site_env) -> set[tuple[str, str]]:
    found = set()
    for name, prefix in PUBLIC.items():
        app = importlib.import_module(f"{name}.app").app
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            # A service's root is published as the bare prefix (`/tasks`, which the gateway passes on as `/`).
            path = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).rstrip("/")
            found |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
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
        assert {"201", "400", "401", "503"} <= set(op["responses"]), path
        assert set(op["responses"]) <= {"201", "400", "401", "503"}, path
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


# ---------------------------------------------------------------------------------------------------------------
# A storage task's `data`, status by status, against the schemas

USER, TASK, SYSTEM = "alice", "0123456789abcdef0123456789abcdef", "cluster"


def md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


class FakeTasks:
    """The tasks service: records every update."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []

    def update(self, token: str, task_id: str, status: str, data: Any = None, lease_s: float | None = None,
               patience_s: float = 0, holder: str | None = None) -> None:
        self.updates.append((status, data))

    def renew(self, token: str, task_id: str, lease_s: float, holder: str | None = None) -> None:
        pass

    @property
    def statuses(self) -> list[str]:
        return [status for status, _ in self.updates]


class FakeStaging:
    """Swift: one task's area in memory, temp URLs that name the object they open; which keys are still on."""

    def __init__(self, stored: Any) -> None:
        self.objects_: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.stored = stored  # swift.StoredObject
        self.fail: Exception | None = None
        self.keys: set[str] = set()  # "client", "job": the area's keys; the area exists while any is on

    def put(self, name: str, content: bytes, headers: dict[str, str] | None = None) -> None:
        self.objects_[name] = (content, headers or {})

    def open_area(self, task: str, lifetime_s: float) -> None:
        if self.fail:
            raise self.fail
        self.keys = {"client", "job"}

    def end_urls(self, task: str, client: bool = True, job: bool = True, expires_in: float | None = None) -> bool:
        self.keys -= {k for k, chosen in (("client", client), ("job", job)) if chosen}
        return True

    def retire(self, task: str) -> int:
        count = len(self.objects_)
        self.objects_.clear()
        self.keys.clear()
        return count

    def temp_url(self, task: str, name: str, method: str, public: bool, prefix: bool = False,
                 ttl_s: int | None = None, job: bool = False) -> str:
        host = "swift.test" if public else "swift.internal"
        query = f"temp_url_sig={'0' * 64}&temp_url_expires=1796198332"
        if prefix:
            query += f"&temp_url_prefix={name}"
        return f"http://{host}:8080/v1/AUTH_test/transfer-{task}/{quote(name)}?{query}"

    def listing(self, task: str) -> list[Any]:
        return [self.stored(name, len(content), md5(content)) for name, (content, _) in sorted(self.objects_.items())]

    def staged(self, task: str, name: str) -> tuple[Any, list[Any]]:
        found = self.listing(task)
        return (next((o for o in found if o.name == name), None),
                [o for o in found if re.fullmatch(r"segments/[0-9]{8}", o.name)])

    def head(self, task: str, name: str) -> dict[str, str] | None:
        if name not in self.objects_:
            return None
        content, headers = self.objects_[name]
        return {"content-length": str(len(content)), "etag": f'"{md5(content)}"', **headers}

    def write_manifest(self, task: str, name: str, segments: list[Any]) -> None:
        self.objects_[name] = (b"", {"x-static-large-object": "True"})


def object_name(url: str) -> str:
    return unquote(url.split("?", 1)[0].split(f"/transfer-{TASK}/", 1)[1])


class FakeCluster:
    """The cluster's side: the pull job (fed URLs on its input), the push job and the small commands."""

    def __init__(self, staging: FakeStaging, xfer: Any, commands: Any) -> None:
        self.staging, self.xfer, self.commands = staging, xfer, commands
        self.pulled: list[bytes] = []
        self.corrupt = False
        self.on_send: list[Any] = []  # what the client does while the job pulls (one action per piece sent)
        self.push_error: Exception | None = None

    def run_as(self, user: Any, system: str, command: Any, rid: str = "", stdin: bytes | None = None,
               max_output: int | None = None) -> Any:
        if isinstance(command, self.xfer.FileSize):
            return sum(len(piece) for piece in self.pulled)
        if isinstance(command, self.xfer.Push):
            if self.push_error:
                raise self.push_error
            for url in (stdin or b"").decode().split():
                self.staging.put(object_name(url), b"d" * 1000)
            return ""
        if isinstance(command, self.xfer.FindJob):
            return []
        if isinstance(command, self.commands.Rename | self.commands.Remove | self.xfer.CancelJobs):
            return ""
        raise AssertionError(f"unexpected command {command!r}")

    @contextmanager
    def feed_as(self, user: Any, system: str, command: Any, rid: str = "") -> Iterator[Any]:
        assert isinstance(command, self.xfer.Pull)
        cluster = self

        class Job:
            running = True

            def send(self, data: bytes) -> None:
                cluster.pulled.append(cluster.staging.objects_[object_name(data.decode().strip())][0])
                if cluster.on_send:
                    cluster.on_send.pop(0)()

            def finish(self) -> str:
                sums = [md5(piece + (b"!" if cluster.corrupt else b"")) for piece in cluster.pulled]
                return "".join(f"{s}\n" for s in sums)

        yield Job()


@pytest.fixture()
def machine(site_env, monkeypatch) -> Iterator[Any]:
    from common import files as commands
    from storage import transfers as module
    from storage import xfer
    from storage.swift import StoredObject

    tasks, staging = FakeTasks(), FakeStaging(StoredObject)
    cluster = FakeCluster(staging, xfer, commands)
    monkeypatch.setattr(module, "run_as", cluster.run_as)
    monkeypatch.setattr(module, "feed_as", cluster.feed_as)
    transfers = module.Transfers(tasks, staging, workers=1)  # type: ignore[arg-type]

    class Machine:
        def __init__(self) -> None:
            self.tasks, self.staging, self.cluster = tasks, staging, cluster

        def transfer(self, op: str, args: dict[str, Any]) -> Any:
            work = {"op": op, "system": SYSTEM, "args": args, "user": USER, "token": "token", "request_id": "rid"}
            t = module.Transfer(TASK, work, "100", "holder-1")
            transfers.held[TASK] = t
            return t

        def step(self, t: Any) -> None:
            """One step of the task, as the service's pool runs it (the status it reached decides the next)."""
            transfers._step(t)

    yield Machine()
    transfers.pool.shutdown(wait=False)


def upload_args() -> dict[str, Any]:
    return {"source": "/Users/al/data run.bin", "name": "data run.bin", "target": "/home/alice/in/data run.bin"}


def documented_properties(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The properties a schema names, its `allOf` parts' included."""
    if "$ref" in schema:
        schema = resolve(spec, schema["$ref"])
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(documented_properties(spec, part))
    return found


def assert_documented(spec: dict[str, Any], value: Any, schema: dict[str, Any], where: str) -> None:
    """`value` is valid for `schema`, and every object in it has exactly the properties the schema names."""
    root = {**spec, "$ref": schema["$ref"]} if "$ref" in schema else {**spec, **schema}
    errors = [e.message for e in jsonschema.Draft202012Validator(root).iter_errors(value)]
    assert not errors, f"{where}: {errors}"

    def same_keys(node: Any, node_schema: dict[str, Any], at: str) -> None:
        properties = documented_properties(spec, node_schema)
        if isinstance(node, dict) and properties:
            assert set(node) == set(properties), f"{at}: sent {sorted(node)}, documented {sorted(properties)}"
            for key, item in node.items():
                same_keys(item, properties[key], f"{at}.{key}")

    same_keys(value, schema, where)


def assert_data_documented(spec: dict[str, Any], op: str, updates: list[tuple[str, Any]]) -> None:
    for status, data in updates:
        name = STORAGE_TASK_DATA[(op, status)]
        assert_documented(spec, data, {"$ref": f"#/components/schemas/{name}"}, f"{op} {status} data ({name})")


def test_upload_of_one_object(machine, spec):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    assert machine.tasks.statuses == ["111"]
    offer = machine.tasks.updates[0][1]
    # What the client does with the offer: PUT the file to msg.parameters.url, whose object is the file's name.
    assert object_name(offer["msg"]["parameters"]["url"]) == "data run.bin"
    assert offer["msg"]["command"].startswith("sh -c ")
    machine.staging.put("data run.bin", b"payload" * 100)
    machine.step(t)
    assert machine.tasks.statuses == ["111", "112", "113", "114"]
    assert_data_documented(spec, "upload", machine.tasks.updates)
    assert machine.tasks.updates[-1][1] == {"source": "data run.bin", "target": "/home/alice/in/data run.bin",
                                            "system_name": SYSTEM}
    assert machine.staging.objects_ == {}  # removed once the task ended


def test_upload_in_segments_is_pulled_while_they_arrive(machine, spec):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    segment_url = machine.tasks.updates[0][1]["msg"]["large_files"]["segment_url"]
    first, second = (object_name(segment_url.format(index=i)) for i in range(2))
    assert (first, second) == ("segments/00000000", "segments/00000001")
    machine.staging.put(first, b"a" * 300)

    def client_sends_the_rest() -> None:
        machine.staging.put(second, b"b" * 200)
        machine.staging.put("data run.bin", b"", {"x-object-meta-segments": "2"})

    machine.cluster.on_send.append(client_sends_the_rest)
    machine.step(t)
    assert machine.tasks.statuses == ["111", "113", "114"]  # 112 skipped: the pull started with the first segment
    assert_data_documented(spec, "upload", machine.tasks.updates)


def test_upload_that_fails_its_checks_ends_115(machine, spec):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    machine.staging.put("data run.bin", b"payload")
    machine.cluster.corrupt = True
    machine.step(t)
    assert machine.tasks.statuses == ["111", "112", "113", "115"]
    assert_data_documented(spec, "upload", machine.tasks.updates)
    assert "Checksum mismatch" in machine.tasks.updates[-1][1]["msg"]
    assert machine.staging.objects_ == {}


def test_upload_that_fails_before_111_ends_400(machine, spec):
    from storage.swift import StagingError

    machine.staging.fail = StagingError("Object storage unreachable (create container): ConnectionError")
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    assert machine.tasks.statuses == ["400"]
    assert_data_documented(spec, "upload", machine.tasks.updates)


def test_download(machine, spec):
    t = machine.transfer("download", {"source": "/home/alice/out/data.bin", "size": 1000})
    machine.step(t)
    assert machine.tasks.statuses == ["116", "117"]
    assert_data_documented(spec, "download", machine.tasks.updates)
    assert object_name(machine.tasks.updates[-1][1]["url"]) == "data.bin"
    assert machine.staging.objects_  # kept for the URL (until invalidated or expired)


def test_download_that_fails_ends_118(machine, spec):
    from common.errors import RemoteError

    machine.cluster.push_error = RemoteError("The transfer job failed: curl: (22) 503")
    t = machine.transfer("download", {"source": "/home/alice/out/data.bin", "size": 1000})
    machine.step(t)
    assert machine.tasks.statuses == ["116", "118"]
    assert_data_documented(spec, "download", machine.tasks.updates)
    assert machine.tasks.updates[-1][1]["error"] == "The transfer job failed: curl: (22) 503"
