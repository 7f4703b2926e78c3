"""Every service's metrics, in the Prometheus text format at `GET /metrics` on its internal port (never routed by
the gateway: kong/kong.yml ends `/<service>/metrics` in a 404).

gunicorn runs a service in several worker processes; with `PROMETHEUS_MULTIPROC_DIR` set (the site sets it, one
private directory per service, emptied at start by common/serving.py) each worker writes its values to files there
and a scrape, whichever worker answers it, merges them all. Without it (unit tests, a bare `flask run`) the values
live in the process.

Labels are bounded by the code, never by what a client sends: the Flask rule (`/tasks/<taskid>`, never the path),
known HTTP methods, status codes, system names of the site file, command and exception class names. No user name,
token, path or id is ever a label.

The metric objects live here; the rest of the code calls the helpers below, one line each.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from flask.sansio.app import App
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .commands import WRAPPER_REFUSED, Output

if TYPE_CHECKING:
    from .config import Site

ENDPOINT = "firecrest_metrics"  # the view's endpoint name: the token check lets this one view through
COLLECTORS = "firecrest.metrics.collectors"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: from a pooled `ls` (a few ms) to a slow sbatch or an upload (tens of s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

disable_created_metrics()  # no `_created` series (multiprocess mode has none either): one shape in both modes
# registry=None: the objects are registered into a fresh registry per scrape (see `exposition`), so that the same
# code serves both modes.
REQUESTS = Counter("firecrest_http_requests", "HTTP requests answered, by Flask route, method and status",
                   ["route", "method", "status"], registry=None)
LATENCY = Histogram("firecrest_http_request_duration_seconds",
                    "Time to answer (until the headers, for streams), by Flask route and method",
                    ["route", "method"], buckets=BUCKETS, registry=None)
SSH_POOL = Gauge("firecrest_ssh_pool_connections", "SSH connections held in the pools of the live workers",
                 ["system"], multiprocess_mode="livesum", registry=None)
SSH_OPENED = Counter("firecrest_ssh_connections_opened", "SSH connections opened (a certificate each)",
                     ["system"], registry=None)
SSH_FAILED = Counter("firecrest_ssh_connections_failed",
                     "SSH connections that could not be opened, by the error class (certificate, network, auth)",
                     ["system", "reason"], registry=None)
REFUSED = Counter("firecrest_commands_refused",
                  "Commands the login node's wrapper refused (allow-list or syntax), by command name",
                  ["system", "command"], registry=None)
THROTTLED = Counter("firecrest_throttled", "Requests answered 429 by a bound of the service, by bound",
                    ["reason"], registry=None)
CERTIFICATES = Counter("firecrest_certificates_issued", "SSH user certificates signed by the certificator",
                       ["system"], registry=None)
STREAMS = Gauge("firecrest_streams_open", "Server-sent event streams open in the live workers, by kind", ["kind"],
                multiprocess_mode="livesum", registry=None)
CLAIMS = Counter("firecrest_task_claims", "Lease claims (POST /claim) by the service that claims", ["service"],
                 registry=None)
CLAIMED = Counter("firecrest_tasks_claimed", "Tasks handed over by lease claims, by service", ["service"],
                  registry=None)
THREADS = Gauge("firecrest_threads", "Threads of the live workers, by kind (see thread_kind)", ["kind"],
                multiprocess_mode="livesum", registry=None)
log = logging.getLogger("firecrest.metrics")
OWN = (REQUESTS, LATENCY, SSH_POOL, SSH_OPENED, SSH_FAILED, REFUSED, THROTTLED, CERTIFICATES, CLAIMS, CLAIMED,
       STREAMS, THREADS)
THREADS_EVERY_S = 2.0
# A pool's threads are `<prefix>_<n>`; a thread of one task `<name>-<task id>`.
NUMBERED = re.compile(r"(?:_\d+|-[0-9a-f]{32})$")


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


# -- the Flask side ---------------------------------------------------------------------------------------------


def instrument(app: Flask, site: Site) -> None:
    """Count and time every request of `app`, serve `GET /metrics`, and show each system's SSH series at 0 from
    the start (a series that appears only on its first event hides the rate of that first event)."""
    app.extensions[COLLECTORS] = []
    for system in site.systems:
        SSH_POOL.labels(system).inc(0)
        SSH_OPENED.labels(system)

    @app.before_request
    def _start() -> None:
        g.metrics_start = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(rule, method, str(response.status_code)).inc()
        LATENCY.labels(rule, method).observe(time.perf_counter() - g.get("metrics_start", time.perf_counter()))
        return response

    app.add_url_rule("/metrics", ENDPOINT, lambda: exposition(app), methods=["GET"])


def is_scrape() -> bool:
    """The request is for `GET /metrics` (no token: see README, Metrics)."""
    return request.endpoint == ENDPOINT


def at_scrape(app: App, collector: Collector) -> None:
    """A collector asked at every scrape of `app` (values read then, e.g. from Redis)."""
    app.extensions[COLLECTORS].append(collector)


def exposition(app: Flask) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        for metric in OWN:
            registry.register(metric)
    for collector in app.extensions[COLLECTORS]:
        registry.register(collector)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class Reading(Collector):
    """A gauge read at scrape time: `read()` gives {label value: number}."""

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        self.name, self.doc, self.label, self.read = name, doc, label, read

    def collect(self) -> Iterable[Metric]:
        try:
            values = self.read()
        except Exception as e:  # a backend down: the scrape still has everything else, this series is missing
            log.warning("metrics: %s not read: %r", self.name, e)
            return
        family = GaugeMetricFamily(self.name, self.doc, labels=[self.label])
        for value, number in sorted(values.items()):
            family.add_metric([value], number)
        yield family


def task_backlog(read: Callable[[], dict[str, float]]) -> Reading:
    return Reading("firecrest_tasks_in_flight", "Unfinished tasks in the task store, by the service that runs them",
                   "service", read)


# -- hooks of common/ssh.py, the certificator and the tasks service ---------------------------------------------


@contextmanager
def ssh_connecting(system: str) -> Iterator[None]:
    """Around the opening of one pooled connection: counts it opened (and held) or failed, by error class."""
    try:
        yield
    except Exception as e:
        SSH_FAILED.labels(system, type(e).__name__).inc()
        raise
    SSH_OPENED.labels(system).inc()
    SSH_POOL.labels(system).inc()


def ssh_closed(system: str, count: int = 1) -> None:
    SSH_POOL.labels(system).dec(count)


def command_ended(system: str, command: str, output: Output) -> None:
    """A command's output: counted if the login node's wrapper refused to run it."""
    if output.status == 126 and WRAPPER_REFUSED.encode() in output.stderr:
        REFUSED.labels(system, command).inc()


def stream_opened(kind: str) -> None:
    STREAMS.labels(kind).inc()


def stream_closed(kind: str) -> None:
    STREAMS.labels(kind).dec()


def throttled(reason: str) -> None:
    THROTTLED.labels(reason).inc()


def certificate_issued(system: str) -> None:
    CERTIFICATES.labels(system).inc()


def thread_kind(thread: threading.Thread) -> str:
    """A thread's kind, bounded by the code: `ssh` (a paramiko connection's own thread: one per pooled
    connection), `requests` (gunicorn's pool: at most --threads), `main`, a named pool or loop of the service
    (`storage-transfer`, `compute-recovery`, `copy`, ...), or `other` (a thread nobody named)."""
    if type(thread).__name__ == "Transport":  # paramiko's, without importing it here
        return "ssh"
    if thread is threading.main_thread():
        return "main"
    if thread.name.startswith("ThreadPoolExecutor-"):  # the one pool nobody here names: gunicorn's gthread
        return "requests"
    if thread.name.startswith("Thread-"):
        return "other"
    return NUMBERED.sub("", thread.name)


def count_threads(seen: set[str]) -> None:
    """Set this process's `firecrest_threads`; a kind seen before and gone now is set to 0."""
    counts: dict[str, int] = {}
    for thread in threading.enumerate():
        kind = thread_kind(thread)
        counts[kind] = counts.get(kind, 0) + 1
    for kind in seen - counts.keys():
        THREADS.labels(kind).set(0)
    for kind, count in counts.items():
        THREADS.labels(kind).set(count)
    seen.update(counts)


def watch_threads() -> None:
    """Count this worker's threads every THREADS_EVERY_S (in a thread of its own, `threads-count`): a thread
    left behind shows as a kind above its bound (tests/faults/leaks.py)."""
    if any(t.name == "threads-count" for t in threading.enumerate()):
        return

    def forever() -> None:
        seen: set[str] = set()
        while True:
            try:
                count_threads(seen)
            except Exception as e:  # never let the count stop a worker
                log.warning("threads not counted: %r", e)
            time.sleep(THREADS_EVERY_S)

    threading.Thread(target=forever, name="threads-count", daemon=True).start()


def lease_claimed(service: str, tasks: int) -> None:
    CLAIMS.labels(service).inc()
    CLAIMED.labels(service).inc(tasks)
