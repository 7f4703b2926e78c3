"""A hostile user through the API: every parameter of every public endpoint (read from docs/openapi.yaml) gets
values meant to break a command line, a parser or a path; nothing may answer 5xx, show a stack trace or run a
canary command. And a user's shell startup files never run on an API call."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from gateway_client import MACHINE, Api

from common.stack_env import REPO

SPEC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
ALICE_HOME = Path("/home/alice")
CANARY = Path("/tmp") / f"fc-canary-{uuid.uuid4().hex[:12]}"
HOSTILE = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f";touch {CANARY}", f"a\ntouch {CANARY}", "'\"", "--version", "-rf",
    "../../../etc/shadow", "²", "٣", "1e309", "9" * 40, "-1", "x" * 5000, "\x00", "[" * 5000, "{\"a\":" * 3000,
]
FINAL = {"200", "400"}  # compute's tasks; storage's external transfers are invalidated at once


def ref(node: dict) -> dict:
    """Follow a local `$ref` of the spec."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations() -> list[tuple[str, str, dict, dict]]:
    ops = []
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete"):
                ops.append((method, path, op, item))
    return ops


def parameters(op: dict, item: dict) -> list[dict]:
    return [ref(p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]


def properties(schema: dict) -> dict[str, dict]:
    schema = ref(schema)
    found = {name: ref(s) for name, s in schema.get("properties", {}).items()}
    for part in schema.get("allOf", []):
        found.update(properties(part))
    return found


def form_fields(op: dict) -> dict[str, dict]:
    content = ref(op.get("requestBody", {})).get("content", {})
    for kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        if kind in content:
            return properties(content[kind]["schema"])
    return {}


def is_file(schema: dict) -> bool:
    return schema.get("format") == "binary" or "contentMediaType" in schema


@pytest.fixture(scope="module")
def playground() -> Iterator[Path]:
    """A directory of alice's where whatever the sweep creates lands, with a file to read. Relative hostile paths
    (`-rf`, `²`) land in her home: whatever the sweep added there is removed too."""
    before = set(ALICE_HOME.iterdir())
    path = ALICE_HOME / f"sweep-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    (path / "src.txt").write_text("line\n" * 20)
    subprocess.run(["chown", "-R", "alice:alice", str(path)], check=True)
    yield path
    for added in set(ALICE_HOME.iterdir()) - before - {ALICE_HOME / "firecrest"}:
        if added.is_dir() and not added.is_symlink():
            shutil.rmtree(added, ignore_errors=True)
        else:
            added.unlink(missing_ok=True)


def baseline(name: str, where: Path) -> Any:
    """A valid value for a parameter, so that the hostile one is the only thing wrong."""
    return {"targetPath": str(where / "src.txt"), "sourcePath": str(where / "src.txt"), "linkPath": str(where / "l"),
            "mode": "700", "owner": "alice", "group": "alice", "file": ("job.sh", b"#!/bin/bash\ntrue\n"),
            "extension": "tar.gz", "type": "tar.gz"}.get(name)


class Sweep:
    def __init__(self, site, where: Path) -> None:
        self.site, self.where = site, where
        self.seen: list[str] = []

    def send(self, method: str, path: str, query: dict, form: dict) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.site.token('alice')}", "X-Machine-Name": MACHINE}
        files = {k: v for k, v in form.items() if isinstance(v, tuple)}
        data = {k: v for k, v in form.items() if not isinstance(v, tuple)}
        reply = requests.request(method.upper(), self.site.env["FIRECREST_URL"] + path, params=query, data=data,
                                 files=files or None, headers=headers, timeout=60, stream=True)
        if reply.headers.get("Content-Type", "").startswith("text/event-stream"):
            reply.close()  # a stream the values opened: its status is the answer (it would run until idle)
        else:
            reply.content  # noqa: B018 (read it all, as without stream=True)
        return reply

    def check(self, what: str, reply: requests.Response) -> None:
        assert reply.status_code < 500, f"{what}: {reply.status_code} {reply.text[:300]}"
        if reply.headers.get("Content-Type", "").startswith("text/event-stream"):
            return  # the values were taken and a stream opened (`send` closed it)
        assert "Traceback" not in reply.text, what
        if reply.status_code >= 400 and reply.headers.get("Content-Type", "").startswith("application/json"):
            reply.json()
        if reply.status_code < 300 and reply.headers.get("Content-Type", "").startswith("application/json"):
            task_id = reply.json().get("task_id")
            if task_id and "/xfer-external/" in reply.url:
                self.invalidate(task_id)  # a pending upload holds one of the user's few transfer slots
            elif task_id:
                self.seen.append(task_id)

    def invalidate(self, task_id: str) -> None:
        reply = requests.post(f"{self.site.env['FIRECREST_URL']}/storage/xfer-external/invalidate", timeout=30,
                              headers={"Authorization": f"Bearer {self.site.token('alice')}",
                                       "X-Machine-Name": MACHINE, "X-Task-Id": task_id})
        assert reply.status_code < 500, reply.text

    def finish_tasks(self) -> None:
        """Every task the sweep started ends without a stack trace, and every job it submitted has ended (an
        xfer-internal `cp` to `-rf` writes into alice's home when it runs, after its task)."""
        api = Api(self.site, "alice", "tasks")
        jobs = []
        for task_id in self.seen:
            task = api.wait(task_id, timeout=60)
            assert task["status"] in FINAL, task
            assert "Traceback" not in json.dumps(task), task
            if isinstance(task["data"], dict) and str(task["data"].get("jobid", "")).isdigit():
                jobs.append(str(task["data"]["jobid"]))
        deadline = time.monotonic() + 120
        while jobs and time.monotonic() < deadline:
            listed = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)], capture_output=True,
                                    text=True, env={**os.environ, **self.site.slurm_env})
            jobs = listed.stdout.split()
            time.sleep(0.5)
        assert jobs == [], f"jobs of the sweep still queued: {jobs}"


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: requests.utils.quote(value, safe=""), path)


@pytest.mark.parametrize(("method", "path", "op", "item"), operations(), ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_values_in_every_parameter(site, playground, method, path, op, item):
    sweep = Sweep(site, playground)
    query_names = [p["name"] for p in parameters(op, item) if p.get("in") == "query"]
    path_names = [p["name"] for p in parameters(op, item) if p.get("in") == "path"]
    fields = form_fields(op)
    base_query = {n: v for n in query_names if (v := baseline(n, playground)) is not None}
    base_form = {n: v for n in fields if (v := baseline(n, playground)) is not None}
    concrete = fill(path, MACHINE) if path_names else path
    for value in HOSTILE:
        if path_names:
            sweep.check(f"{method} {path} path={value!r}", sweep.send(method, fill(path, value), base_query, base_form))
        for name in query_names:
            sweep.check(f"{method} {path} {name}={value!r}",
                        sweep.send(method, concrete, {**base_query, name: value}, base_form))
        for name, schema in fields.items():
            hostile: Any = ("h.sh", value.encode()) if is_file(schema) else value
            sweep.check(f"{method} {path} {name}={value!r}",
                        sweep.send(method, concrete, base_query, {**base_form, name: hostile}))
            if name.endswith("Path"):  # the same as a name inside the user's directory: it may be created
                sweep.check(f"{method} {path} {name}=<dir>/{value!r}",
                            sweep.send(method, concrete, base_query, {**base_form, name: f"{playground}/{value}"}))
    sweep.finish_tasks()
    assert not CANARY.exists(), f"a hostile value ran a command: {CANARY} exists"


def test_shell_startup_files_never_run_on_an_api_call(site):
    """sshd runs the login wrapper through the user's shell; no file of the user's may run first."""
    api = Api(site, "alice", "utilities")
    canary = ALICE_HOME / f"startup-canary-{uuid.uuid4().hex[:10]}"
    payload = f"touch {canary}\n".encode()
    names = [".bashrc", ".profile", ".bash_profile", ".bash_login", ".shrc"]
    ssh_dir = ALICE_HOME / ".ssh"
    created_ssh_dir = not ssh_dir.exists()
    try:
        for name in names:
            reply = api.post("/upload", files={"file": (name, payload)}, targetPath=str(ALICE_HOME))
            assert reply.status_code == 201, reply.text
        assert api.post("/mkdir", targetPath=str(ssh_dir), p="true").status_code == 201
        assert api.post("/upload", files={"file": ("rc", payload)}, targetPath=str(ssh_dir)).status_code == 201
        for call in ("/whoami", "/ls"):
            reply = api.get(call, targetPath=str(ALICE_HOME))
            assert reply.status_code == 200, reply.text
        client = site.connect("alice", site.certificate("alice", "alice@tests"))  # a fresh login, as a new pool's
        try:
            assert site.run(client, "whoami").stdout == "alice\n"
        finally:
            client.close()
        assert not canary.exists()
    finally:
        for name in names:
            (ALICE_HOME / name).unlink(missing_ok=True)
        (ssh_dir / "rc").unlink(missing_ok=True)
        if created_ssh_dir:
            shutil.rmtree(ssh_dir, ignore_errors=True)
        canary.unlink(missing_ok=True)


def test_the_state_directory_is_out_of_reach_through_the_api(site):
    """What the review did by hand: read Keycloak's database, replace the code root runs, list the state."""
    files, storage = Api(site, "alice", "utilities"), Api(site, "alice", "storage")
    database = site.dir / "keycloak" / "data" / "h2" / "keycloakdb.mv.db"
    assert files.get("/download", sourcePath=str(database)).status_code == 400
    assert files.get("/ls", targetPath=str(site.dir)).status_code == 400
    for directory in ("keycloak/bin", "keycloak/data", "swift", "gateway", "login", "slurm/etc", "run", "log"):
        reply = files.post("/upload", files={"file": ("x", b"#!/bin/sh\n")}, targetPath=str(site.dir / directory))
        assert reply.status_code == 400, (directory, reply.text)
    reply = storage.post("/xfer-external/upload", sourcePath="kc.sh", targetPath=str(site.dir / "keycloak/bin/kc.sh"))
    assert reply.status_code == 400, reply.text
