"""Schema fuzzing: every operation of docs/openapi.yaml, through the gateway, as alice, with values schemathesis
generates from the document (valid and invalid ones): no answer is a 5xx, and every answer is one the document
gives that operation (status code, content type, documented headers, body schema).

Bounded and repeatable: MAX_EXAMPLES generated cases per operation plus the document's own examples, derandomized
(the same cases on every run), no shrinking, no example database. Generated values that name files, jobs and
systems are steered by fuzz_sandbox.py into a scratch directory of alice's and onto the fuzz's own jobs, so the
fuzz can change nothing another test relies on; the tasks it starts are finished and their jobs cancelled."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.configuration
import pytest
import requests
import schemathesis
from conftest import user_ids
from fuzz_sandbox import PLACES, Sandbox, crc, machine, open_sandbox, passing
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.stack_env import REPO

# Hypothesis keeps caches (and, unless told otherwise, examples) under ./.hypothesis: not in the repository.
hypothesis.configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "firecrest-fuzz-hypothesis")
MAX_EXAMPLES = 12
CONFIG = schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none", "no-shrink": True,
                   "with-security-parameters": False},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    "max-stream-events": 4,  # an event stream's first events are enough to check its status and type
    "request-timeout": 60,
    "cache": {"enabled": False},
})
# `GET /docs/` is left out: it takes no input at all (every case would be the same request) and answers HTML, which
# no schema describes beyond "a string"; tests/e2e/test_apidocs_gateway.py checks the page. `/docs/{name}` is fuzzed.
UNFUZZED = {("GET", "/docs/")}
SCHEMA = schemathesis.openapi.from_path(REPO / "docs" / "openapi.yaml", config=CONFIG).exclude(path="/docs/")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
SERVICES = ("status", "utilities", "compute", "storage", "tasks")
FINAL = {"200", "400", "114", "115", "117", "118", "300", "302"}
ANSWERS: dict[str, Counter[int]] = {}  # operation -> status codes seen, for the summary
REFUSALS: list[str] = []  # the first answer of each 4xx status per operation, for the summary
VALID: Counter[bool] = Counter()  # answers to cases generated valid: accepted (True) or refused (False)


@pytest.fixture(scope="module")
def sandbox(site) -> Iterator[Sandbox]:
    if site.compose:
        pytest.skip("the schema fuzz runs against the native site (make test's first pass)")
    boxes = open_sandbox(site, user_ids("alice"))
    box = next(boxes)
    yield box
    try:
        finish(site, box)
    finally:
        next(boxes, None)


def rewrite(case: Any, box: Sandbox) -> None:
    """Steer the generated values that name places, jobs and systems (fuzz_sandbox.py)."""
    read_only = case.method.upper() == "GET"
    label = f"{case.method.upper()} {case.path}"
    if box.operation != label:  # each operation's steering starts afresh: it never depends on the others' runs
        box.operation, box.calls = label, 0
    if "X-Machine-Name" in case.headers:
        case.headers["X-Machine-Name"] = machine(case.headers["X-Machine-Name"], box.calls)
    if "Idempotency-Key" in case.headers:  # a key of this call only: a reused one is 422 (its own test covers it)
        box.calls += 1
        mine = f"{box.root.name}.{crc(label)}.{box.calls}"
        case.headers["Idempotency-Key"] = f"{case.headers['Idempotency-Key']}.{mine}"[-255:]
    for values in (case.query, case.body):
        if isinstance(values, dict):
            steer(values, box, read_only)
    idle = (case.query or {}).get("idle")
    if case.path.startswith("/tasks/events") and (idle is None or isinstance(idle, int) and 1 <= idle <= 3600):
        case.query = {**(case.query or {}), "idle": 1}  # the stream ends 1 s after its last event, not 300 s
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if name in ("system_name", "machine") or (name == "name" and "/jobs/" in case.path):
            params[name] = machine(value, box.calls)
        elif name == "name" and case.path.startswith("/status/services/"):
            params[name] = SERVICES[crc(value) % len(SERVICES)] if crc(value) % 2 else value
        elif name == "name" and case.path.startswith("/status/"):
            params[name] = machine(value, box.calls)
        elif name == "name" and case.path.startswith("/compute/nodes/"):
            params[name] = "localhost" if crc(value) % 2 else value
        elif name == "jobid":
            params[name] = box.job(value, running=case.method.upper() == "DELETE")
        elif name == "tid" and value in TASK_ROUTES:
            params[name] = f"{crc(value):032x}"  # /tasks/events is another operation: a well-formed id nobody has
        elif name == "tid" and box.tasks and crc(value) % 4:
            params[name] = box.tasks[crc(value) % len(box.tasks)]


# Names under /tasks/ that are operations of their own, not task ids (GET /tasks/events is a stream).
TASK_ROUTES = {"events", "status", "tasks"}


def steer(values: dict[str, Any], box: Sandbox, read_only: bool) -> None:
    """Query parameters and form fields: places into the sandbox, and the fields nearly always refused made to
    pass half the time (fuzz_sandbox.PASSING)."""
    for name, value in list(values.items()):
        if name in PLACES:
            values[name] = box.place(value, read_only)
        else:
            box.calls += 1
            keep, values[name] = passing(name, value, box.calls)
            if not keep:
                del values[name]


def after(site, case: Any, response: Any, box: Sandbox) -> None:
    """Keep the tasks the call started; an external transfer is invalidated at once (it holds one of alice's few
    transfer places)."""
    # schemathesis's Response: header names in lower case, each with a list of values.
    if response.status_code >= 300 or "json" not in " ".join(response.headers.get("content-type", [])):
        return
    try:
        task_id = response.json().get("task_id")
    except (ValueError, AttributeError):
        return
    if not task_id:
        return
    box.tasks.append(task_id)
    if "/xfer-external/" in case.path and "invalidate" not in case.path:
        requests.post(f"{site.env['FIRECREST_URL']}/storage/xfer-external/invalidate", timeout=30,
                      headers={"Authorization": f"Bearer {site.token('alice')}", "X-Task-Id": task_id})


def finish(site, box: Sandbox) -> None:
    """Every task the fuzz started ends; the jobs its submissions made are cancelled."""
    url = site.env["FIRECREST_URL"]
    jobs: list[str] = []
    deadline = time.monotonic() + 120
    for task_id in box.tasks:
        while True:
            reply = requests.get(f"{url}/tasks/{task_id}", timeout=30,
                                 headers={"Authorization": f"Bearer {site.token('alice')}"})
            task = reply.json().get("task", {}) if reply.status_code == 200 else {}
            if task.get("status") in FINAL or reply.status_code != 200 or time.monotonic() > deadline:
                break
            if task.get("status") in ("110", "111"):  # an upload never to come whose invalidation missed: free it
                requests.post(f"{url}/storage/xfer-external/invalidate", timeout=30,
                              headers={"Authorization": f"Bearer {site.token('alice')}", "X-Task-Id": task_id})
            time.sleep(0.2)
        data = task.get("data")
        if isinstance(data, dict) and str(data.get("jobid", "")).isdigit():
            jobs.append(str(data["jobid"]))
    if jobs:
        site.shell("alice", "scancel " + " ".join(jobs))


@SCHEMA.parametrize()
def test_every_operation_answers_as_documented(case, site, sandbox):
    sandbox.refill()
    valid = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE  # as generated, not steered
    rewrite(case, sandbox)
    response = case.call(base_url=site.env["FIRECREST_URL"], timeout=60,
                         headers={"Authorization": f"Bearer {site.token('alice')}"})
    seen = ANSWERS.setdefault(f"{case.method.upper()} {case.path}", Counter())
    if response.status_code >= 400 and response.status_code not in seen:
        REFUSALS.append(f"{case.method.upper()} {case.path} {response.status_code}: {response.text[:160]}")
    seen[response.status_code] += 1
    VALID[response.status_code < 300] += valid
    after(site, case, response, sandbox)
    case.validate_response(response, checks=CHECKS)


def test_the_fuzz_reaches_every_operation():
    """Every documented operation is fuzzed, but those UNFUZZED says why not."""
    fuzzed = {(op.method.upper(), op.path) for op in (result.ok() for result in SCHEMA.get_all_operations())}
    documented = {(method.upper(), path) for path, item in SCHEMA.raw_schema["paths"].items() for method in item
                  if method in ("get", "post", "put", "delete")}
    assert fuzzed == documented - UNFUZZED


def test_the_fuzz_mostly_reached_real_paths():
    """The steering works: cases generated valid are accepted (the invalid ones are there to be refused); about
    half are (the rest name files that do not exist, on purpose, or steered values the generator then varied).
    The summary (status codes per operation, a refusal of each kind) is left in firecrest-fuzz-answers.txt."""
    if not ANSWERS:
        pytest.skip("the fuzz did not run")
    lines = [f"{op}: {dict(sorted(seen.items()))}" for op, seen in sorted(ANSWERS.items())]
    total = sum(ANSWERS.values(), Counter())
    lines.append(f"all: {dict(sorted(total.items()))}; cases generated valid: {VALID[True]} accepted, "
                 f"{VALID[False]} refused")
    (Path(tempfile.gettempdir()) / "firecrest-fuzz-answers.txt").write_text("\n".join(lines + REFUSALS) + "\n")
    assert VALID[True] >= 0.4 * (VALID[True] + VALID[False]), lines[-1]
