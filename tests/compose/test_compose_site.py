"""The compose site as a real site is segmented: what a user's processes (on the login and compute nodes, and
inside a job) can reach, where jobs run, what is published. Run against the compose site only
(FIRECREST_STACK_DIR=.compose; `make test` does, see deploy/docker/compose/test)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import PODMAN
from test_compute import finished, submit

SERVICE = "compute"  # the `api` fixture's service (tests/conftest.py)
PROBE_S = 3

# What no user process may reach: (service, network it is on, port, what it is).
FORBIDDEN = [
    ("redis", "backend", 6379, "Redis"),
    ("swift-storage", "backend", 6200, "Swift's object server"),
    ("swift-storage", "backend", 6201, "Swift's container server"),
    ("swift-storage", "backend", 6202, "Swift's account server"),
    ("swift-proxy", "cluster", 11211, "memcached"),
    ("controller", "cluster", 3306, "MariaDB"),
    ("keycloak", "services", 8080, "Keycloak (its administration on the same listener)"),
    ("keycloak", "services", 9000, "Keycloak's management"),
    ("tasks", "services", 8000, "the tasks service"),
    ("certificator", "services", 8000, "the certificator"),
]
# What must stay reachable, so that a closed port above means isolation, not a broken probe.
NEEDED = [("controller", "cluster", 6817, "slurmctld"), ("swift-proxy", "cluster", 8080, "Swift's proxy")]

# One TCP connection attempt per target; prints {"host:port": "open" | "closed: <reason>"}.
PROBE = f"""
import json, socket, sys
result = {{}}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout={PROBE_S}).close()
        result[target] = "open"
    except OSError as e:
        result[target] = f"closed: {{e}}"
print(json.dumps(result))
"""


def podman(*args: str) -> str:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, check=True, timeout=120).stdout


def container(site, service: str) -> str:
    project = site.env["FIRECREST_COMPOSE_PROJECT"]
    names = podman("ps", "--filter", f"label=com.docker.compose.project={project}",
                   "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}").split()
    assert names, f"no running container of {service}"
    return names[0]


def address(site, service: str, network: str) -> str:
    """The service's address on the network: a process that resolves no name can still try this."""
    project = site.env["FIRECREST_COMPOSE_PROJECT"]
    networks = json.loads(podman("inspect", "--format", "{{json .NetworkSettings.Networks}}", container(site, service)))
    return networks[f"{project}_{network}"]["IPAddress"]


@pytest.fixture(scope="module")
def targets(site) -> dict[str, str]:
    """host:port -> what it is, by name and by address."""
    found = {}
    for service, network, port, what in FORBIDDEN + NEEDED:
        found[f"{service}:{port}"] = what
        found[f"{address(site, service, network)}:{port}"] = what
    return found


def probe_from(site, service: str, targets: dict[str, str]) -> dict[str, str]:
    out = podman("exec", "--user", "alice", container(site, service), "python3", "-c", PROBE, *targets)
    return json.loads(out)


def assert_isolated(result: dict[str, str], targets: dict[str, str]) -> None:
    needed = {what for _, _, _, what in NEEDED}
    reached = [f"{t} ({targets[t]})" for t, r in result.items() if r == "open" and targets[t] not in needed]
    assert not reached, f"reachable from a user's process: {reached}"
    for service, _, port, what in NEEDED:
        assert result[f"{service}:{port}"] == "open", f"{what} must stay reachable: {result}"


@pytest.mark.parametrize("node", ["login", "compute1", "compute2"])
def test_a_users_process_on_a_node_reaches_no_backend(site, targets, node):
    assert_isolated(probe_from(site, node, targets), targets)


def test_a_job_reaches_no_backend_and_runs_on_a_compute_node(site, api, targets):
    body = "hostname\npython3 - " + " ".join(targets) + " <<'PY'\n" + PROBE + "PY"
    task = submit(api, body, name="isolation")
    assert task["status"] == "200", task
    jobid, output = task["data"]["jobid"], task["data"]["job_file_out"]
    assert finished(site, str(jobid)) == "COMPLETED"
    host, probed = site.path(output).read_text().splitlines()[:2]
    assert host in {"compute1", "compute2"}, f"the job ran on {host}"
    assert_isolated(json.loads(probed), targets)
    node = site.shell("alice", f"sacct -n -X -j {jobid} -o NodeList%20").stdout.strip()
    assert node == host


def test_only_the_gateway_keycloak_and_swift_are_published_on_loopback(site):
    project = site.env["FIRECREST_COMPOSE_PROJECT"]
    published = {}
    for c in json.loads(podman("ps", "--filter", f"label=com.docker.compose.project={project}", "--format", "json")):
        for port in c.get("Ports") or []:
            service = c["Labels"]["com.docker.compose.service"]
            published[service] = f"{port['host_ip']}:{port['host_port']}->{port['container_port']}"
    assert published == {"gateway": "127.0.0.1:18000->8000", "keycloak": "127.0.0.1:18180->8080",
                         "swift-proxy": "127.0.0.1:18080->8080"}
