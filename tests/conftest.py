"""Fixtures for tests against the real embedded site (brought up once per session if it is not up)."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import tempfile
import time
import uuid
from base64 import b64decode
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import paramiko
import pytest
import redis
import requests
import yaml
from cluster_paths import MountedPath, cluster_path
from gateway_client import MACHINE, Api

from common import config
from common.stack_env import REPO, load_env, stack_dir

LOCAL = REPO / "deploy" / "local"
COMPOSE = REPO / "deploy" / "docker" / "compose"
PODMAN = REPO / "deploy" / "docker" / "podman"
_tokens: dict[str, tuple[str, float]] = {}


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


@dataclass
class Site:
    env: dict[str, str]
    dir: Path
    workdir: Path

    @property
    def compose(self) -> bool:
        """The compose site (docker-compose.yml), not the native one."""
        return "FIRECREST_COMPOSE_PROJECT" in self.env

    @property
    def slurm_env(self) -> dict[str, str]:
        return {"SLURM_CONF": self.env["SLURM_CONF"]}

    def slurm_env_of(self, system: str | None) -> dict[str, str]:
        """Slurm's clients for `system` (None: the first): each system's cluster has its own slurm.conf
        (`SLURM_CONF_<SYSTEM>` in the env file; the first system's is `SLURM_CONF`)."""
        key = f"SLURM_CONF_{system.upper()}" if system else ""
        return {"SLURM_CONF": self.env.get(key, self.env["SLURM_CONF"])}

    @property
    def site_file(self) -> Path:
        """The site file the services read."""
        return site_file(self.compose)

    @property
    def systems(self) -> list[str]:
        """The systems of the site file, in its order (natively two, in compose one): X-Machine-Name values."""
        return site_systems(self.site_file)

    def partitions(self, system: str) -> set[str]:
        """The partitions the site file gives `system`."""
        raw = yaml.safe_load(self.site_file.read_text())
        return {p for s in raw["systems"] if s["name"] == system for p in s.get("partitions", [])}

    @cached_property
    def config(self) -> config.Site:
        """The site file as the services read it (native site: its paths are this machine's)."""
        return config.load(self.site_file, {**os.environ, **self.env, "FIRECREST_STACK_DIR": str(self.dir)})

    def first(self, system: str | None) -> bool:
        return system is None or system == self.systems[0]

    def cluster_name(self, system: str | None = None) -> str:
        """The Slurm cluster name of `system` (each system is a cluster of its own; accounting keys jobs by it)."""
        out = self.shell(None, "scontrol show config", check=True, system=system).stdout
        return next(line.split("=", 1)[1].strip() for line in out.splitlines() if line.startswith("ClusterName"))

    @staticmethod
    def path(path: str | Path) -> Path:
        """A path on the cluster's filesystems, for the tests' own file operations (tests/cluster_paths.py)."""
        return cluster_path(path)

    def shell(self, user: str | None, command: str, check: bool = False,
              system: str | None = None) -> subprocess.CompletedProcess:
        """`sh -c command` on the login node of `system` (None: the first), as `user` (root if None): Slurm's
        clients as a user of the cluster would run them, beside the gateway."""
        if self.compose:
            argv = [str(PODMAN), "exec", *(["--user", user] if user else []), self.env["FIRECREST_LOGIN_CONTAINER"],
                    "sh", "-c", command]
            return subprocess.run(argv, capture_output=True, text=True, check=check)
        argv = ["su", user, "-s", "/bin/sh", "-c", command] if user else ["sh", "-c", command]
        env = {**os.environ, **self.slurm_env_of(system)}
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=check)

    def certificate(self, principal: str, key_id: str, validity: str = "-1m:+5m",
                    system: str | None = None) -> paramiko.Ed25519Key:
        """A fresh ed25519 key with a certificate from the user CA of `system` (None: the first system's)."""
        ca = self.dir / "ca" / "user_ca" if self.first(system) else Path(self.config.ca_key_of(str(system)))
        path = Path(tempfile.mkdtemp(dir=self.workdir)) / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-s", str(ca), "-I", key_id, "-n", principal,
             "-V", validity, f"{path}.pub"],
            check=True,
        )
        key = paramiko.Ed25519Key.from_private_key_file(str(path))
        key.load_certificate(f"{path}-cert.pub")
        return key

    def connect(self, username: str, key: paramiko.PKey, system: str | None = None) -> paramiko.SSHClient:
        """Log in to the login node of `system` (None: the first), verifying its pinned host key."""
        if self.first(system):
            host, port = self.env["FIRECREST_SSH_HOST"], int(self.env["FIRECREST_SSH_PORT"])
            kind, blob = (self.dir / "login" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        else:
            login = self.config.systems[str(system)]
            host, port, (kind, blob) = login.host, login.port, login.host_key.split()
        client = paramiko.SSHClient()
        client.get_host_keys().add(f"[{host}]:{port}", kind, paramiko.PKey.from_type_string(kind, b64decode(blob)))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((host, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(host, port, username=username, pkey=key, sock=sock, allow_agent=False, look_for_keys=False,
                       timeout=10, auth_timeout=10)
        return client

    @staticmethod
    def run(client: paramiko.SSHClient, command: str, stdin: bytes = b"") -> Result:
        chan_in, chan_out, chan_err = client.exec_command(command, timeout=30)
        if stdin:
            chan_in.write(stdin)
        chan_in.channel.shutdown_write()
        out, err = chan_out.read().decode(), chan_err.read().decode()
        return Result(chan_out.channel.recv_exit_status(), out, err)

    @staticmethod
    def control(command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run one of deploy/local's commands (up, down, status, restart)."""
        return subprocess.run([LOCAL / command, *args], capture_output=True, text=True, check=check)

    def lexists(self, path: str) -> bool:
        """Whether `path` exists (or is a dangling link) on any of the cluster's nodes: a canary a hostile value
        would make wherever it ran. Natively every node is this machine; in compose the shared filesystems are
        looked at here, the rest (a node's own /tmp, /) on each node that runs a user's processes."""
        shared = any(path == root or path.startswith(root + "/") for root in MountedPath.mounts)
        if not self.compose or shared:
            return os.path.lexists(cluster_path(path))
        project = self.env["FIRECREST_COMPOSE_PROJECT"]
        for node in ("login", "compute1", "compute2"):
            names = subprocess.run([str(PODMAN), "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                                    "--filter", f"label=com.docker.compose.service={node}"],
                                   capture_output=True, text=True, check=True).stdout.split()
            for name in names:
                probe = subprocess.run([str(PODMAN), "exec", name, "sh", "-c", 'test -e "$1" || test -L "$1"', "-",
                                        path], capture_output=True)
                if probe.returncode == 0:
                    return True
        return False

    def replicas(self, service: str) -> int:
        """How many processes of the service run (natively one; in compose its running replicas)."""
        if not self.compose:
            return 1
        project = self.env["FIRECREST_COMPOSE_PROJECT"]
        return len(subprocess.run([str(PODMAN), "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                                   "--filter", f"label=com.docker.compose.service={service}"],
                                  capture_output=True, text=True, check=True).stdout.split())

    def nodes(self) -> list[str]:
        """The cluster's compute nodes, as Slurm names them (natively one, `localhost`; compose two)."""
        return sorted(set(self.shell(None, "sinfo -h -N -o %N", check=True).stdout.split()))

    def token(self, user: str) -> str:
        """An access token from the user's Keycloak client (client credentials), reused for up to 2 minutes
        (tokens live 5)."""
        token, fetched = _tokens.get(user, ("", 0.0))
        if token and time.monotonic() - fetched < 120:
            return token
        response = requests.post(
            self.env["FIRECREST_TOKEN_URL"],
            data={"grant_type": "client_credentials"},
            auth=(self.env[f"FIRECREST_CLIENT_ID_{user.upper()}"], self.env[f"FIRECREST_CLIENT_SECRET_{user.upper()}"]),
            timeout=30,
        )
        response.raise_for_status()
        _tokens[user] = (response.json()["access_token"], time.monotonic())
        return _tokens[user][0]

    def secret(self, name: str) -> str:
        return json.loads((self.dir / "secrets.json").read_text())[name]

    def service_url(self, name: str) -> str:
        return self.env[f"FIRECREST_INTERNAL_{name.upper()}_URL"]

    def audit_records(self, request_ids: set[str], system: str | None = None) -> list[dict]:
        return [r for r in map(json.loads, self.audit_lines(system)) if r["request_id"] in request_ids]

    def audit_lines(self, system: str | None = None) -> list[str]:
        """The audit log of the login node of `system` (None: the first); each login node keeps its own
        (deploy/local/stack/components/cluster2.py: `<system>-audit.log`)."""
        path = self.dir / "log" / ("audit.log" if self.first(system) else f"{system}-audit.log")
        return path.read_text().splitlines() if path.exists() else []


def site_file(compose: bool) -> Path:
    return REPO / ("deploy/docker/compose/site.yaml" if compose else "deploy/local/site.yaml")


def site_systems(path: Path | None = None) -> list[str]:
    """The names of the systems in the site file (the native site's, or the compose site's when that is the one
    under test)."""
    raw = yaml.safe_load((path or site_file(compose_wanted())).read_text())
    return [s["name"] for s in raw["systems"]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `each_system` runs once per system of the site under test (never assumes two)."""
    if "each_system" in metafunc.fixturenames:
        metafunc.parametrize("each_system", site_systems())


def compose_wanted() -> bool:
    """FIRECREST_STACK_DIR names the compose site's directory (.compose), not the native one's (.stack)."""
    return stack_dir().resolve().name == ".compose"


def site_is_up() -> bool:
    env_file = stack_dir() / "env"
    if not env_file.exists():
        return False
    if compose_wanted():
        try:  # the gateway answers (401 without a token) once compose-up has seen every container healthy
            return requests.get(f"{load_env()['FIRECREST_URL']}/status", timeout=5).status_code == 401
        except requests.RequestException:
            return False
    return subprocess.run([LOCAL / "status"], capture_output=True).returncode == 0


# tests/compose checks what only the compose site has (its networks, nodes, published ports).
collect_ignore = [] if compose_wanted() else ["compose"]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Site:
    if not site_is_up():
        up = COMPOSE / "up" if compose_wanted() else LOCAL / "up"
        # Let `up` report progress and what runs where straight to the terminal (CI logs show it).
        with pytestconfig.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\nthe site is not up: running {up.relative_to(REPO)}", flush=True)
            subprocess.run([up], check=True)
    env = load_env()
    if "FIRECREST_MOUNT_HOME" in env:
        MountedPath.mounts = {"/home": env["FIRECREST_MOUNT_HOME"], "/scratch": env["FIRECREST_MOUNT_SCRATCH"]}
    return Site(env=env, dir=stack_dir(), workdir=tmp_path_factory.mktemp("site"))


@pytest.fixture
def redis_client(site: Site) -> Iterator[redis.Redis]:
    """The site's Redis (tests of the task and event stores), closed after the test."""
    client = redis.Redis.from_url(site.env["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def alice(site: Site) -> Iterator[paramiko.SSHClient]:
    client = site.connect("alice", site.certificate("alice", "alice@tests"))
    yield client
    client.close()


@pytest.fixture
def bob(site: Site) -> Iterator[paramiko.SSHClient]:
    client = site.connect("bob", site.certificate("bob", "bob@tests"))
    yield client
    client.close()


def user_ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def fresh_dir(user: str) -> Iterator[Path]:
    """A fresh directory of the user's on the cluster (the tests run as root, where the cluster's /home is)."""
    path = cluster_path(f"/home/{user}/t-{uuid.uuid4().hex[:10]}")
    path.mkdir()
    os.chown(path, *user_ids(user))
    yield path
    subprocess.run(["rm", "-rf", "--", os.fspath(path)], check=False)


@pytest.fixture
def home_dir(site: Site) -> Iterator[Path]:
    yield from fresh_dir("alice")


@pytest.fixture
def bob_dir(site: Site) -> Iterator[Path]:
    yield from fresh_dir("bob")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The client machine's side of a transfer."""
    return tmp_path


@pytest.fixture(scope="session")
def systems(site: Site) -> list[str]:
    """The site's systems (X-Machine-Name values), the first being the one `api` addresses by default."""
    assert site.systems[0] == MACHINE, "tests/gateway_client.py MACHINE must be the site file's first system"
    return site.systems


@pytest.fixture(scope="module")
def api(site: Site, request: pytest.FixtureRequest) -> Api:
    """alice's client of the gateway for the module's service (its SERVICE); a module may define its own."""
    return Api(site, "alice", request.module.SERVICE)


@pytest.fixture(scope="module")
def bob_api(site: Site, request: pytest.FixtureRequest) -> Api:
    """bob's client of the gateway for the module's service (its SERVICE)."""
    return Api(site, "bob", request.module.SERVICE)
