"""Services are built, not imported (common/app.py, common/serving.py): importing a service or building its app
starts nothing; the background work starts from gunicorn's post_worker_init, once."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_openapi import SITE

from common.config import parse

SERVICES = ("certificator", "status", "utilities", "tasks", "compute", "storage")
# A tasks service that refuses at once (the loops started here retry it quietly in the background).
ENV = {"FIRECREST_INTERNAL_TASKS_URL": "http://127.0.0.1:9"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", SERVICES)
def test_importing_or_building_a_service_starts_nothing(service):
    before = set(threading.enumerate())
    module = importlib.import_module(f"{service}.app")
    assert not hasattr(module, "app")  # no app built at import
    app = module.create(site=parse(SITE, ENV))
    assert set(threading.enumerate()) == before
    assert app.name == service


# Run in a child process: the loops it starts never end, and in pytest's process they went on logging after its
# output was closed ("--- Logging error ---" after the summary).
CHILD = """
import importlib, json, sys, threading
from types import SimpleNamespace
from common import serving
from common.config import parse
app = importlib.import_module(sys.argv[1] + ".app").create(site=parse(sys.stdin.read(), json.loads(sys.argv[2])))
serving.post_worker_init(SimpleNamespace(wsgi=app))
first = [t.name for t in threading.enumerate()]
serving.post_worker_init(SimpleNamespace(wsgi=app))  # again: the running loops are not doubled
print(json.dumps([first, [t.name for t in threading.enumerate()]]))
"""


@pytest.mark.parametrize(("service", "loops"), [
    ("compute", {"compute-recovery"}),
    ("storage", {"storage-recovery", "storage-leases", "storage-arrivals", "storage-sweep"}),
])
def test_the_engine_starts_from_post_worker_init(service, loops):
    child = subprocess.run([sys.executable, "-c", CHILD, service, json.dumps(ENV)], input=SITE, text=True,
                           capture_output=True, cwd=ROOT, timeout=60, check=True)
    first, again = json.loads(child.stdout.splitlines()[-1])
    assert loops <= set(first)
    assert sorted(name for name in again if name in loops) == sorted(loops)
