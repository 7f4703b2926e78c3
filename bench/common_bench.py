"""Shared pieces of the benchmarks: the site's env, tokens, a raw pooled SSH floor, wrk runs, and reporting.

The site is the one whose stack dir `common/stack_env.py` names: `.stack` (the native site, `make up`) unless
FIRECREST_STACK_DIR says otherwise (`.compose`: the compose site). Everything a benchmark reaches (gateway, token
URL, login node, user CA, site file, users' homes) comes from that dir and its env; a figure that needs something
the site does not offer ends the run saying so, rather than measuring another site.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko
import requests
import yaml

from bench.stats import percentile
from common import config
from common.commands import Command
from common.stack_env import REPO, load_env, stack_dir


def _load_site_env() -> dict[str, str]:
    try:
        return load_env()
    except FileNotFoundError:
        raise SystemExit(f"no site env at {stack_dir() / 'env'}: bring the site up (`make up`, or the compose site "
                         "with FIRECREST_STACK_DIR=.compose)") from None


ENV = _load_site_env()
COMPOSE = bool(ENV.get("FIRECREST_COMPOSE_PROJECT"))  # written by the compose site's up only


def need(key: str, what: str) -> str:
    """ENV[key], or the end of the run: `what` cannot be measured on a site whose env lacks it."""
    value = ENV.get(key)
    if not value:
        raise SystemExit(f"{stack_dir() / 'env'} has no {key}: {what} cannot be measured on this site")
    return value


def site_label() -> str:
    """Which site a run measures, for its output: kind, stack dir, gateway and login node."""
    kind = "compose site (podman containers)" if COMPOSE else "native site"
    return (f"{kind}, {stack_dir()}: gateway {ENV.get('FIRECREST_URL')}, login node "
            f"{ENV.get('FIRECREST_SSH_HOST')}:{ENV.get('FIRECREST_SSH_PORT')}")


def site_file() -> Path:
    """The site file the site's services run with: FIRECREST_SITE_FILE, else the compose or the local one."""
    if os.environ.get("FIRECREST_SITE_FILE"):
        return Path(os.environ["FIRECREST_SITE_FILE"])
    return REPO / ("deploy/docker/compose/site.yaml" if COMPOSE else "deploy/local/site.yaml")


@functools.cache
def site() -> config.Site:
    """The site file, expanded with the stack's env. The login node's pinned host key is read from the stack dir
    (`login/ssh_host_ed25519_key.pub`, the file the site's services are given), since the path in a container's
    site file (/etc/firecrest/...) is not this host's."""
    raw = yaml.safe_load(site_file().read_text())
    for system in raw.get("systems", []):
        login = system.get("login", {})
        if "host_key_file" in login:
            login["host_key_file"] = str(stack_dir() / "login" / "ssh_host_ed25519_key.pub")
    return config.parse(yaml.safe_dump(raw), {**os.environ, **ENV, "FIRECREST_STACK_DIR": str(stack_dir())})


USERS = ("alice", "bob")  # the users with clients in every site's env


def client_levels(per_user: int) -> list[tuple[int, tuple[str, ...]]]:
    """The concurrent loads of whoami.py and utilities.py: per_user clients of alice, then of alice and bob.

    One user's synchronous commands are bounded per service process (limits.sync_commands_per_user, 8, in each of
    2 processes): one more is a 429 at once, so one user's 64 clients measure mostly refusals (262 of 640 on
    2026-12-06). Even 16 clients of one user get some, as the two processes do not share one user's connections
    evenly (16 clients of alice: 85 of 480 answered 429; 8 clients: none). So each user runs at most the bound
    (the site file's, by default) and more load comes from more users, one wrk thread each: 8 and 16 clients.
    64 clients without refusals would need eight users; the sites have two. A 429 is still counted, never hidden.
    """
    return [(per_user * n, USERS[:n]) for n in range(1, len(USERS) + 1)]


def service_line(command: Command, request_id: str | None = None) -> str:
    """Exactly the line the services send for `command` (common/ssh.py): its quoted argv under the site's remote
    timeout, with the `ID=<request id>` tag when one is given (through the gateway there always is one)."""
    return command.line(site().limits.command_timeout_s if command.timeout else None, request_id)


def token(user: str = "alice") -> str:
    response = requests.post(
        need("FIRECREST_TOKEN_URL", "anything through the gateway"),
        data={"grant_type": "client_credentials"},
        auth=(need(f"FIRECREST_CLIENT_ID_{user.upper()}", f"a load as {user}"),
              need(f"FIRECREST_CLIENT_SECRET_{user.upper()}", f"a load as {user}")),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@dataclass
class Figures:
    name: str
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int

    def row(self, floor: Figures | None = None) -> str:
        ratio = f"{self.p50_ms / floor.p50_ms:5.2f}x" if floor else "  -   "
        return (f"{self.name:<44} p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms  "
                f"{self.rps:8.1f} req/s  errors {self.errors:<4} p50/floor {ratio}")


def measure(name: str, call: Callable[[], bool], n: int, clients: int = 1) -> Figures:
    """Run `call` n times from `clients` threads; `call` returns False on an error. A call that raises (a timeout,
    a refused connection) is an error too, with the time it took: one slow answer never ends the run unreported."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(_: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        try:
            good = call()
        except (requests.RequestException, paramiko.SSHException, OSError) as e:
            print(f"{name}: {e!r}", file=sys.stderr)
            good = False
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(dt)
            errors += not good

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    return Figures(name, statistics.median(latencies), percentile(latencies, 0.99), n / elapsed, errors)


class RawSSH:
    """The floor: authenticated paramiko Transports to the login node and a channel per command, as the pool
    does it (at most 32 channels per connection, sshd's MaxSessions being 64), without HTTP, tokens or the
    certificator. The login node is the stack's (FIRECREST_SSH_HOST/PORT, as this host reaches it), the
    certificate is signed with the stack's user CA, and the node's host key must be the stack's pinned one: the
    floor is always measured on the same site as the gateway figures of the run."""

    CHANNELS_PER_CONNECTION = 32

    def __init__(self, user: str = "alice", connections: int = 2) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        key = self.tmp / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-s", str(stack_dir() / "ca" / "user_ca"), "-I", f"{user}@bench",
                        "-n", user, "-V", "-1m:+30m", f"{key}.pub"], check=True)
        pkey = paramiko.Ed25519Key.from_private_key_file(str(key))
        pkey.load_certificate(f"{key}-cert.pub")
        self.transports = [self._connect(user, pkey) for _ in range(connections)]
        self.slots = threading.Semaphore(connections * self.CHANNELS_PER_CONNECTION)
        self._next = 0

    @staticmethod
    def _connect(user: str, pkey: paramiko.PKey) -> paramiko.Transport:
        address = (need("FIRECREST_SSH_HOST", "the raw SSH floor"),
                   int(need("FIRECREST_SSH_PORT", "the raw SSH floor")))
        try:
            sock = socket.create_connection(address, timeout=10)
        except OSError as e:
            raise SystemExit(f"the login node {address[0]}:{address[1]} is unreachable from this host ({e}): the "
                             "raw SSH floor cannot be measured on this site") from e
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.start_client()
        pinned = (stack_dir() / "login" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        offered = transport.get_remote_server_key()
        if [offered.get_name(), offered.get_base64()] != pinned:
            transport.close()
            raise SystemExit(f"{address[0]}:{address[1]} is not this site's login node (its host key is not "
                             f"{stack_dir() / 'login/ssh_host_ed25519_key.pub'})")
        transport.auth_publickey(user, pkey)
        return transport

    def run(self, command: str) -> tuple[int, bytes]:
        with self.slots:
            self._next += 1
            chan = self.transports[self._next % len(self.transports)].open_session()
            chan.exec_command(command)  # no EOF: see common/ssh.py
            out = bytearray()
            while True:
                data = chan.recv(65536)
                if not data:
                    break
                out += data
            status = chan.recv_exit_status()
            chan.close()
            return status, bytes(out)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


WRK_LINE = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


@dataclass(frozen=True)
class Load:
    """What one wrk thread sends: a path (with its query) and headers of its own, e.g. one user's token."""

    path: str
    headers: dict[str, str]


# Gives each thread its Load (a thread's connections all send it), when there are LOADS.
WRK_THREADS_SCRIPT = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("load_index", #threads)
end
function init(args)
  local load = LOADS and LOADS[load_index]
  if load then
    wrk.path = load.path
    for k, v in pairs(load.headers) do wrk.headers[k] = v end
  end
end
"""

# Counts the responses per HTTP status (wrk itself only says "Non-2xx"), with the Retry-After value when there is one
# (the gateway's two 429s differ by it); each thread's table is summed in done().
WRK_STATUS_SCRIPT = """
counts = {}
function response(status, headers, body)
  local key = tostring(status)
  local retry = headers["Retry-After"] or headers["retry-after"]
  if retry then key = key .. " retry-after=" .. retry end
  counts[key] = (counts[key] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %s|%d\\n", k, v)) end
end
"""
WRK_STATUS_LINE = re.compile(r"^status ([^|\n]+)\|(\d+)$", re.M)


def lua_string(text: str) -> str:
    if not (text.isascii() and text.isprintable()):
        raise ValueError(f"not a plain ASCII value for wrk's script: {text!r}")
    return json.dumps(text)  # printable ASCII: JSON's escapes (\\ and \") are Lua's


def wrk_script(loads: list[Load] | None, statuses: bool) -> str:
    """wrk's Lua script: each thread's Load, and the count of responses by status when asked for."""
    script = "LOADS = nil\n"
    if loads:
        tables = []
        for load in loads:
            headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in load.headers.items())
            tables.append(f"{{path = {lua_string(load.path)}, headers = {{{headers}}}}}")
        script = f"LOADS = {{{', '.join(tables)}}}\n"
    return script + WRK_THREADS_SCRIPT + (WRK_STATUS_SCRIPT if statuses else "")


def wrk_figure(pattern: str, out: str) -> str:
    """The first group of `pattern` in wrk's summary; a summary without it ends the benchmark, saying so."""
    match = re.search(pattern, out)
    if match is None:
        raise SystemExit(f"wrk's summary has no {pattern!r}:\n{out}")
    return match.group(1)


def wrk(name: str, url: str, headers: dict[str, str], clients: int, seconds: int = 10,
        statuses: dict[str, int] | None = None, loads: list[Load] | None = None) -> Figures:
    """A load from a separate process (wrk), so the client does not share the GIL with what it measures.

    With `statuses` (a dict), wrk also counts the responses into it by status, e.g. "200", "429 retry-after=1".
    With `loads`, wrk runs one thread per Load (clients / len(loads) connections each), each sending its path
    and headers on top of `headers` (e.g. each user's token and own directory); `url` then gives the address."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (deploy/local/install installs it)")
    threads = len(loads) if loads else 2
    if loads and clients % threads:
        raise ValueError(f"{clients} clients do not divide among {threads} wrk threads")
    argv = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if statuses is None and not loads:
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:  # 0600: it may hold tokens
            script.write(wrk_script(loads, statuses is not None))
            script.flush()
            out = subprocess.run([*argv, "-s", script.name, url], capture_output=True, text=True, check=True).stdout
        for key, count in WRK_STATUS_LINE.findall(out):
            if statuses is not None:
                statuses[key] = statuses.get(key, 0) + int(count)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {q: float(v) * scale[u] for q, v, u in WRK_LINE.findall(out)}
    rps = float(wrk_figure(r"Requests/sec:\s+([\d.]+)", out))
    requests_done = int(wrk_figure(r"(\d+) requests in", out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock_err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock_err.groups())) if sock_err else 0)
    if requests_done == 0:
        raise SystemExit(f"wrk made no request:\n{out}")
    return Figures(name, pct["50"], pct["99"], rps, errors)


def report(title: str, rows: list[tuple[Figures, Figures | None]]) -> None:
    print(f"\n== {title}")
    for fig, floor in rows:
        print("  " + fig.row(floor))
    print(json.dumps({f.name: vars(f) for f, _ in rows}), file=sys.stderr)


def describe_statuses(statuses: dict[str, int]) -> str:
    """wrk's responses by status, e.g. "200: 3120, 429 retry-after=1: 12"."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "no response"
