"""Services are built, not imported (common/app.py, common/serving.py): importing a service or building its app
starts nothing; the background work starts from gunicorn's post_worker_init, once."""

from __future__ import annotations

import importlib
import threading
from types import SimpleNamespace

import pytest
from test_openapi import SITE

from common import serving
from common.config import parse

SERVICES = ("certificator", "status", "utilities", "tasks", "compute", "storage")
# A tasks service that refuses at once (the loops started here retry it quietly in the background).
ENV = {"FIRECREST_INTERNAL_TASKS_URL": "http://127.0.0.1:9"}


@pytest.mark.parametrize("service", SERVICES)
def test_importing_or_building_a_service_starts_nothing(service):
    before = set(threading.enumerate())
    module = importlib.import_module(f"{service}.app")
    assert not hasattr(module, "app")  # no app built at import
    app = module.create(site=parse(SITE, ENV))
    assert set(threading.enumerate()) == before
    assert app.name == service


@pytest.mark.parametrize(("service", "loops"), [
    ("compute", {"compute-recovery"}),
    ("storage", {"storage-recovery", "storage-leases", "storage-arrivals", "storage-sweep"}),
])
def test_the_engine_starts_from_post_worker_init(service, loops):
    app = importlib.import_module(f"{service}.app").create(site=parse(SITE, ENV))
    serving.post_worker_init(SimpleNamespace(wsgi=app))
    names = {t.name for t in threading.enumerate()}
    assert loops <= names
    serving.post_worker_init(SimpleNamespace(wsgi=app))  # again: the running loops are not doubled
    assert sorted(t.name for t in threading.enumerate() if t.name in loops) == sorted(loops)
