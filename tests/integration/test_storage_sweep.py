"""The storage service's sweep against the real Swift, with the service's own credentials (no request through the
gateway): an area no URL can reach any more is removed."""

from __future__ import annotations

import uuid

import pytest
import requests
from test_storage import service_staging

from storage.swift import Staging


@pytest.fixture(scope="module")
def staging(site) -> Staging:
    return service_staging(site)


def test_areas_no_url_can_reach_are_swept(staging):
    """What a client uploaded under a task that has ended is deleted once every URL to it has expired."""
    task_id = uuid.uuid4().hex
    staging.open_area(task_id, 3600)
    url = staging.temp_url(task_id, "left-behind", "PUT", public=True)
    assert requests.put(url, data=b"orphan", timeout=30).status_code == 201
    staging.sweep(legacy_max_age_s=30 * 86400)
    assert [o.name for o in staging.listing(task_id)] == ["left-behind"]  # its URLs live: kept
    staging.end_urls(task_id, client=False, job=False, expires_in=-60)  # as if they had expired
    staging.sweep(legacy_max_age_s=30 * 86400)
    assert staging.listing(task_id) is None
    assert requests.put(url, data=b"again", timeout=30).status_code == 401
