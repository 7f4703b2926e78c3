"""The services' metrics as the site's monitoring scrapes them: from this host (as root) on each service's internal
port natively; in the compose site inside each replica's container, summed over the replicas."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

PODMAN = Path(__file__).resolve().parents[1] / "deploy" / "docker" / "podman"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FETCH = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/metrics').read().decode())"


def texts(site, service: str) -> list[str]:
    """The scrape of each process group serving `service` (natively one gunicorn; in compose each replica)."""
    if not site.compose:
        reply = requests.get(f"{site.service_url(service)}/metrics", timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"].startswith("text/plain")
        return [reply.text]
    project = site.env["FIRECREST_COMPOSE_PROJECT"]
    names = subprocess.run([str(PODMAN), "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                            "--filter", f"label=com.docker.compose.service={service}"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [subprocess.run([str(PODMAN), "exec", name, "python3", "-c", FETCH], capture_output=True, text=True,
                           check=True).stdout for name in names]


def scrape(site, service: str) -> Samples:
    total: Samples = {}
    for text in texts(site, service):
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, frozenset(s.labels.items()))
                total[key] = total.get(key, 0.0) + s.value
    return total


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)




def wait_streams_closed(site, service: str, kind: str, deadline_s: float = 60) -> None:
    """Until no stream of `kind` is open in `service` (a stream whose client left is closed by the service at its
    next write or poll): a test that opened streams leaves the site as it found it."""
    deadline = time.monotonic() + deadline_s
    while value(scrape(site, service), "firecrest_streams_open", kind=kind) > 0:
        assert time.monotonic() < deadline, f"{kind} streams of {service} still open after {deadline_s} s"
        time.sleep(0.5)
