"""Metrics (common/metrics.py): every service answers `GET /metrics` on its internal port in the Prometheus text
format, as the site's monitoring scrapes it (from this host, as root; in the compose site inside each replica's
container, summed over the replicas), and the public gateway answers 404 for it however the path is spelled."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from service_metrics import Samples, scrape, value

from utilities.commands import Checksum

SERVICE = "utilities"  # the `api` fixture's
SERVICES = ("certificator", "status", "utilities", "tasks", "compute", "storage")
PUBLIC = ("status", "utilities", "tasks", "compute", "storage")
def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_answers_in_the_text_format(site, service):
    samples = scrape(site, service)
    assert "firecrest_http_requests_total" in names(samples)  # at least the health checks of /status
    assert "firecrest_http_request_duration_seconds_bucket" in names(samples)
    for _, labels in samples:
        assert not {k for k, _ in labels} & {"user", "username", "token", "path"}


def test_requests_are_counted_by_route_and_status_with_latency(site, api):
    before = scrape(site, "utilities")
    for _ in range(3):
        assert api.get("/whoami").status_code == 200
    assert api.get("/whoami", machine="no-such-system").status_code == 400
    after = scrape(site, "utilities")

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("firecrest_http_requests_total", route="/whoami", method="GET", status="200") >= 3
    assert moved("firecrest_http_requests_total", route="/whoami", method="GET", status="400") >= 1
    assert moved("firecrest_http_request_duration_seconds_count", route="/whoami", method="GET") >= 4
    assert value(after, "firecrest_http_request_duration_seconds_bucket", route="/whoami", method="GET",
                 le="+Inf") == value(after, "firecrest_http_request_duration_seconds_count", route="/whoami",
                                     method="GET")
    assert not any(dict(labels).get("route", "").startswith("/utilities") for _, labels in after)


def test_the_pool_and_its_certificates_after_a_command(site, api):
    assert api.get("/whoami").status_code == 200
    utilities = scrape(site, "utilities")
    assert value(utilities, "firecrest_ssh_pool_connections", system="cluster") > 0
    assert value(utilities, "firecrest_ssh_connections_opened_total", system="cluster") >= 1
    assert value(scrape(site, "certificator"), "firecrest_certificates_issued_total", system="cluster") >= 1


def test_the_task_store_shows_its_backlog(site):
    tasks = scrape(site, "tasks")
    for service in ("compute", "storage"):
        assert ("firecrest_tasks_in_flight", frozenset({("service", service)})) in tasks


@contextmanager
def without(site, program: str) -> Iterator[None]:
    """The login node's allow-list without `program` for a moment, as an administrator narrowing it would."""
    path = "/etc/firecrest/allowed-commands" if site.compose else str(site.dir / "login" / "allowed-commands")
    keep = f"{path}.metrics-test"
    site.shell(None, f"cp -p {path} {keep} && grep -vx {program} {keep} > {path}.new && chmod 644 {path}.new "
                     f"&& mv {path}.new {path}", check=True)
    try:
        yield
    finally:
        site.shell(None, f"mv {keep} {path}", check=True)


def test_a_command_the_login_node_refuses_is_counted(site, api, home_dir):
    target = home_dir / f"refused-{uuid.uuid4().hex[:8]}"
    target.write_text("x")
    before = scrape(site, "utilities")
    with without(site, "sha256sum"):
        reply = api.get("/checksum", targetPath=str(target))
    assert reply.status_code == 400 and reply.headers.get("X-Error"), reply.text
    after = scrape(site, "utilities")
    labels = {"system": "cluster", "command": Checksum.name}
    assert value(after, "firecrest_commands_refused_total", **labels) - \
        value(before, "firecrest_commands_refused_total", **labels) >= 1
    assert api.get("/checksum", targetPath=str(target)).status_code == 200  # the allow-list is back


VARIANTS = ("/{s}/metrics", "//{s}/metrics", "/{s}//metrics", "/{s}/./metrics", "/{s}/metrics/", "/{s}/metrics/.",
            "/{s}/%6detrics", "/{s}/metric%73", "/{s}/metrics%2F", "/{s}/x/../metrics", "/{s}/metrics?x=1")


@pytest.mark.parametrize("service", [*PUBLIC, "certificator"])
def test_the_gateway_never_serves_metrics(site, service):
    url = urlsplit(site.env["FIRECREST_URL"])
    token = site.token("alice")
    for variant in VARIANTS:
        path = variant.format(s=service)
        for method in ("GET", "HEAD", "POST"):
            for headers in ({}, {"Authorization": f"Bearer {token}"}):
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                try:
                    conn.request(method, path, headers=headers)  # the path as written: no client normalises it
                    reply = conn.getresponse()
                    body = reply.read().decode(errors="replace")
                finally:
                    conn.close()
                assert reply.status == 404, (method, path, headers.keys(), reply.status, body)
                assert "firecrest_" not in body
