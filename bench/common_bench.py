"""Shared pieces of the benchmarks: the site's env, tokens, a raw pooled SSH floor, wrk runs, and reporting."""

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

from common import config
from common.commands import Command
from common.stack_env import REPO, load_env, stack_dir

ENV = load_env()


@functools.cache
def site() -> config.Site:
    """The site file the services run with (FIRECREST_SITE_FILE, else the local one), expanded with the stack's env."""
    path = Path(os.environ.get("FIRECREST_SITE_FILE", REPO / "deploy/local/site.yaml"))
    return config.parse(path.read_text(), {**os.environ, **ENV, "FIRECREST_STACK_DIR": str(stack_dir())})


def service_line(command: Command, request_id: str | None = None) -> str:
    """Exactly the line the services send for `command` (common/ssh.py): its quoted argv under the site's remote
    timeout, with the `ID=<request id>` tag when one is given (through the gateway there always is one)."""
    return command.line(site().limits.command_timeout_s if command.timeout else None, request_id)


def token(user: str = "alice") -> str:
    response = requests.post(
        ENV["FIRECREST_TOKEN_URL"],
        data={"grant_type": "client_credentials"},
        auth=(ENV[f"FIRECREST_CLIENT_ID_{user.upper()}"], ENV[f"FIRECREST_CLIENT_SECRET_{user.upper()}"]),
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, call: Callable[[], bool], n: int, clients: int = 1) -> Figures:
    """Run `call` n times from `clients` threads; `call` returns False on an error."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(_: int) -> None:
        nonlocal errors
        t0 = time.perf_counter()
        good = call()
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
    certificator."""

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
        sock = socket.create_connection((ENV["FIRECREST_SSH_HOST"], int(ENV["FIRECREST_SSH_PORT"])))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.start_client()
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


# Counts the responses per HTTP status (wrk itself only says "Non-2xx"), with the Retry-After value when there is one
# (the gateway's two 429s differ by it); each thread's table is summed in done().
WRK_STATUS_SCRIPT = """
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
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


def wrk_figure(pattern: str, out: str) -> str:
    """The first group of `pattern` in wrk's summary; a summary without it ends the benchmark, saying so."""
    match = re.search(pattern, out)
    if match is None:
        raise SystemExit(f"wrk's summary has no {pattern!r}:\n{out}")
    return match.group(1)


def wrk(name: str, url: str, headers: dict[str, str], clients: int, seconds: int = 10,
        statuses: dict[str, int] | None = None) -> Figures:
    """A load from a separate process (wrk), so the client does not share the GIL with what it measures.

    With `statuses` (a dict), wrk also counts the responses into it by status, e.g. "200", "429 retry-after=1"."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (deploy/local/install installs it)")
    argv = ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if statuses is None:
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(WRK_STATUS_SCRIPT)
            script.flush()
            out = subprocess.run([*argv, "-s", script.name, url], capture_output=True, text=True, check=True).stdout
        for key, count in WRK_STATUS_LINE.findall(out):
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
