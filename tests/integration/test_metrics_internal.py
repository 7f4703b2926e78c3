"""Metrics are the site's, not the users' (native site): a user's process cannot reach any service's internal port
(the firewall component), nor read the directory where the workers keep their values; docs/examples/metrics.sh
(the README's scrape example) runs as it says."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("certificator", "status", "utilities", "tasks", "compute", "storage")
CURL = "curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 {url}/metrics"


@pytest.mark.parametrize("service", SERVICES)
def test_a_users_process_cannot_reach_a_services_metrics(site, service):
    url = site.service_url(service)
    as_root = site.shell(None, CURL.format(url=url))
    assert as_root.returncode == 0 and as_root.stdout == "200", as_root.stderr  # the port is up and answers
    as_alice = site.shell("alice", CURL.format(url=url))
    assert as_alice.returncode != 0 and as_alice.stdout == "000", (as_alice.stdout, as_alice.stderr)


@pytest.mark.parametrize("service", SERVICES)
def test_the_workers_values_are_private_to_the_service(site, service):
    directory = site.dir / "services" / f"metrics-{service}"
    info = directory.stat()
    assert info.st_mode & 0o777 == 0o700 and info.st_uid != 0
    assert any(directory.iterdir())  # the workers write there
    listing = site.shell("alice", f"ls {directory}")
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_the_readme_scrape_example_runs(site):
    result = subprocess.run(["bash", "docs/examples/metrics.sh"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env=os.environ | {"FIRECREST_STACK_DIR": str(site.dir)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for service in SERVICES:
        assert any(re.fullmatch(rf"{service}: [1-9]\d* requests answered", line) for line in lines), lines
    assert any(line.startswith('firecrest_ssh_pool_connections{system="cluster"}') for line in lines)
    assert lines[-1] == "through the gateway: HTTP 404"
