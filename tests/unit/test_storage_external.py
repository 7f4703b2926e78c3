"""The external transfers' state machine (storage/external.py and its two directions) driven with fakes for the
task store, Swift and the cluster: the codes a task goes through, the `data` it carries at each (exactly what
docs/openapi.yaml's schemas describe), and when its URLs end."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

import jsonschema
import pytest
from test_openapi import SITE, STORAGE_TASK_DATA, resolve, spec

from common.slurm import jobs
from common.task_status import Status

__all__ = ["spec"]  # a fixture shared with test_openapi.py

USER, TASK, SYSTEM = "alice", "0123456789abcdef0123456789abcdef", "cluster"


def md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


class FakeTasks:
    """The tasks service: records every update (in `events` too, in order with the staging area's changes)."""

    def __init__(self, events: list[str]) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.events = events
        self.listed: dict[str, dict[str, Any]] = {}  # the unfinished tasks of the user

    def release(self) -> None:  # no connection to close
        pass

    def update(self, token: str, task_id: str, status: str, data: Any = None, lease_s: float | None = None,
               patience_s: float = 0, holder: str | None = None) -> None:
        self.updates.append((status, data))
        self.events.append(status)

    def unfinished(self, token: str, service: str) -> dict[str, dict[str, Any]]:
        return {tid: t for tid, t in self.listed.items() if t.get("service") == service}

    def renew(self, token: str, task_id: str, lease_s: float, holder: str | None = None) -> None:
        pass

    @property
    def statuses(self) -> list[str]:
        return [status for status, _ in self.updates]


class FakeStaging:
    """Swift: one task's area in memory, temp URLs that name the object they open; which keys are still on."""

    def __init__(self, stored: Any, events: list[str]) -> None:
        self.objects_: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.stored = stored  # swift.StoredObject
        self.fail: Exception | None = None
        self.keys: set[str] = set()  # "client", "job": the area's keys
        self.events = events
        self.listings = 0

    def put(self, name: str, content: bytes, headers: dict[str, str] | None = None) -> None:
        self.objects_[name] = (content, headers or {})

    def open_area(self, task: str, lifetime_s: float) -> None:
        if self.fail:
            raise self.fail
        self.keys = {"client", "job"}

    def end_urls(self, task: str, client: bool = True, job: bool = True, expires_in: float | None = None) -> bool:
        ended = {k for k, chosen in (("client", client), ("job", job)) if chosen}
        self.keys -= ended
        self.events.append(f"end {' '.join(sorted(ended))} URLs")
        return True

    def retire(self, task: str) -> int:
        count = len(self.objects_)
        self.objects_.clear()
        self.keys.clear()
        self.events.append("retire")
        return count

    def temp_url(self, task: str, name: str, method: str, public: bool, prefix: bool = False,
                 ttl_s: int | None = None, job: bool = False) -> str:
        host = "swift.test" if public else "swift.internal"
        query = f"temp_url_sig={'0' * 64}&temp_url_expires=1796198332"
        if prefix:
            query += f"&temp_url_prefix={name}"
        return f"http://{host}:8080/v1/AUTH_test/transfer-{task}/{quote(name)}?{query}"

    def listing(self, task: str) -> list[Any]:
        self.listings += 1
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
        self.lost_jobs = 0  # how many of the next jobs Slurm forgets (common/slurm/jobs.py FindAnyJob finds none)

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
        if isinstance(command, jobs.FindJob):
            return []
        if isinstance(command, self.commands.Rename | self.commands.Remove | jobs.CancelJobs):
            return ""
        raise AssertionError(f"unexpected command {command!r}")

    @contextmanager
    def feed_as(self, user: Any, system: str, command: Any, rid: str = "") -> Iterator[Any]:
        assert isinstance(command, self.xfer.Pull | self.xfer.Push)
        cluster = self

        class Job:
            running = True

            def __init__(self) -> None:
                self.input = b""

            def send(self, data: bytes) -> None:
                if isinstance(command, cluster.xfer.Push):  # its URLs, all at once
                    self.input += data
                    return
                cluster.pulled.append(cluster.staging.objects_[object_name(data.decode().strip())][0])
                if cluster.on_send:
                    cluster.on_send.pop(0)()

            def finish(self, watch: Any = None) -> str:
                if cluster.lost_jobs:  # Slurm forgot this job: srun would wait forever, the watch looks
                    cluster.lost_jobs -= 1
                    cluster.pulled.clear()
                    while True:
                        watch()
                if isinstance(command, cluster.xfer.Push):
                    return cluster.run_as(user, system, command, stdin=self.input)
                sums = [md5(piece + (b"!" if cluster.corrupt else b"")) for piece in cluster.pulled]
                return "".join(f"{s}\n" for s in sums)

        yield Job()


@pytest.fixture()
def machine() -> Iterator[Any]:
    from common import files as commands
    from common.config import parse
    from common.engine import Work
    from storage import external, external_jobs
    from storage.swift import StoredObject

    events: list[str] = []
    tasks, staging = FakeTasks(events), FakeStaging(StoredObject, events)
    cluster = FakeCluster(staging, external_jobs, commands)
    remote = SimpleNamespace(run=cluster.run_as, feed=cluster.feed_as)  # the cluster, as common.remote.Remote
    engine, transfers = external.storage_engine(tasks, remote, staging, parse(SITE, {}),  # type: ignore[arg-type]
                                                workers=1)

    class Machine:
        def __init__(self) -> None:
            self.tasks, self.staging, self.cluster, self.events = tasks, staging, cluster, events
            self.transfers = transfers

        def transfer(self, op: str, args: dict[str, Any]) -> Any:
            work = Work(op, SYSTEM, args, USER, "token", "rid")
            t = external.Transfer(TASK, work, Status.QUEUED, "holder-1", remote, external.LEASE_S)  # type: ignore[arg-type]
            engine.held[TASK] = t
            return t

        def step(self, t: Any) -> None:
            """One step of the task, as the service's pool runs it (the status it reached decides the next)."""
            transfers.step(t)

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


def test_a_transfer_whose_job_slurm_forgot_starts_over(machine):
    """A restarted slurmctld forgot the job its srun waits for: the watch finds no job twice in a row, the
    transfer starts over (its earlier jobs cancelled first) and completes."""
    machine.cluster.lost_jobs = 1
    t = machine.transfer("download", {"source": "/home/alice/out/data.bin", "size": 1000})
    machine.step(t)
    assert machine.tasks.statuses == ["116", "116", "117"]


def test_an_upload_whose_pull_job_slurm_forgot_starts_over(machine):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    machine.staging.put("data run.bin", b"payload" * 100)
    machine.cluster.lost_jobs = 1
    machine.step(t)
    assert machine.tasks.statuses == ["111", "112", "113", "112", "113", "114"]  # the pull again, from 112


def test_a_transfer_whose_jobs_slurm_keeps_forgetting_fails_with_the_reason(machine):
    machine.cluster.lost_jobs = 3
    t = machine.transfer("download", {"source": "/home/alice/out/data.bin", "size": 1000})
    machine.step(t)
    assert machine.tasks.statuses == ["116", "116", "116", "118"]
    assert "The scheduler lost the transfer's job" in machine.tasks.updates[-1][1]["error"]


# -- URLs end with their task; untrusted names; the bound; the watcher ----------------------------------------


def test_an_uploads_urls_end_before_its_outcome_is_recorded(machine):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    machine.staging.put("data run.bin", b"payload")
    machine.step(t)
    assert machine.events == ["111", "112", "113", "end client URLs", "114", "retire"]


def test_a_failed_upload_ends_its_urls_too(machine):
    t = machine.transfer("upload", upload_args())
    machine.step(t)
    machine.staging.put("data run.bin", b"payload")
    machine.cluster.corrupt = True
    machine.step(t)
    assert machine.events[-3:] == ["end client URLs", "115", "retire"]


def test_a_download_ends_its_job_urls_and_keeps_its_get_url(machine):
    t = machine.transfer("download", {"source": "/home/alice/out/data.bin", "size": 1000})
    machine.step(t)
    assert machine.staging.keys == {"client"}  # the GET URL's
    assert machine.events == ["116", "end job URLs", "117"]


def test_names_of_other_shapes_are_never_pieces(machine):
    """A client stores `segments/../../<elsewhere>` and other names through its prefix URL: neither counts as an
    arrival nor is pulled; they go with the area."""
    from storage import external_upload as upload

    t = machine.transfer("upload", upload_args())
    machine.step(t)
    for name in ("segments/../../transfer-x/data run.bin", "segments/0", "segments/000000001", "segments/-0000001"):
        machine.staging.put(name, b"hostile")
    assert not upload.arrived(machine.staging, TASK, "data run.bin", whole=False)
    machine.staging.put("data run.bin", b"payload")
    machine.step(t)
    assert machine.tasks.statuses[-1] == "114"
    assert machine.cluster.pulled == [b"payload"]
    assert machine.staging.objects_ == {}


def test_a_user_with_too_many_transfers_in_flight_gets_429(machine):
    from common.auth import Identity
    from common.errors import TooManyRequests

    limit = machine.transfers.site.storage.max_transfers_per_user
    user = Identity(USER, "token", {})
    listed = machine.tasks.listed
    listed.update({f"c{i}": {"service": "compute", "status": "100"} for i in range(limit)})  # not transfers
    listed.update({f"d{i}": {"service": "storage", "status": "114"} for i in range(limit)})  # ended
    listed.update({f"s{i}": {"service": "storage", "status": s} for i, s in enumerate(["111", "113", "116"])})
    with machine.transfers.admission.admit(user):
        pass
    listed.update({f"w{i}": {"service": "storage", "status": "111"} for i in range(limit - 3)})
    with pytest.raises(TooManyRequests) as refused, machine.transfers.admission.admit(user):
        pass
    assert refused.value.status == 429 and int(refused.value.headers()["Retry-After"]) > 0
    assert refused.value.body()["description"] == "Too many transfers in flight"


def test_a_long_wait_is_watched_less_often(machine):
    from storage import external_upload as module

    t = machine.transfer("upload", upload_args())
    machine.step(t)
    machine.transfers.check_arrivals()
    assert machine.staging.listings == 1
    machine.transfers.check_arrivals()  # not due yet
    assert machine.staging.listings == 1
    t.waiting_since -= 3600  # an hour without the client's upload
    t.next_check = 0.0
    before = module.time.monotonic()
    machine.transfers.check_arrivals()
    after = module.time.monotonic()
    assert machine.staging.listings == 2
    assert before + module.WATCH_MAX_INTERVAL_S <= t.next_check <= after + module.WATCH_MAX_INTERVAL_S
