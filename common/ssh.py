"""Pooled SSH to the login nodes, as the calling user.

One paramiko Transport per (system, user), more when one is saturated with channels; a channel per command.
A new connection makes a fresh ed25519 key and asks the certificator, with the user's token, for a
short-lived certificate; the login node's host key is verified against the site file. Connections are
closed when idle or old, and are never shared between users. A per-user lock makes a burst open one
connection, not one per request.
"""

from __future__ import annotations

import base64
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from typing import Generic

import paramiko
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import errors, metrics
from .auth import Identity
from .commands import Command, Output, T
from .config import Site, System

log = logging.getLogger("firecrest.ssh")
STATUS_GRACE_S = 5  # the local deadline is the remote timeout plus this
WATCH_EVERY_S = 15.0  # how often a long command's watch runs (Feed.finish)
Watch = Callable[[], None]


class CertificatorClient:
    def __init__(self, url: str, service_token: str) -> None:
        self.url = url
        self.service_token = service_token
        self.http = requests.Session()

    def certificate(self, identity: Identity, system: str, public_key: str, request_id: str) -> str:
        try:
            response = self.http.post(
                f"{self.url}/certificates/resume" if identity.background else f"{self.url}/certificates",
                data={"system": system, "public_key": public_key},
                headers={
                    "Authorization": f"Bearer {identity.token}",
                    "X-Firecrest-Service-Token": self.service_token,
                    "X-Request-ID": request_id,
                },
                timeout=10,
            )
        except requests.RequestException as e:
            raise errors.CertificateError(f"Certificator unreachable: {e.__class__.__name__}", 503) from e
        if response.status_code != 200:
            try:
                reason = response.json().get("description", response.text)
            except ValueError:
                reason = response.text[:200]
            status = response.status_code if response.status_code in (400, 401, 403) else 503
            raise errors.CertificateError(f"Certificator refused: {reason}", status)
        return response.json()["certificate"]


class UserSlots:
    """A bound on each user's synchronous commands running at once in this process (a request thread waits on
    each one): one more is refused at once with 429, so one user can never hold every thread of the service.
    Background work of tasks (`Identity.background`) runs on its own threads and is not counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    @contextmanager
    def hold(self, identity: Identity, system: str) -> Iterator[None]:
        user = identity.username
        if identity.background or self.limit <= 0:
            yield
            return
        with self._lock:
            if self._held.get(user, 0) >= self.limit:
                metrics.throttled("user_commands")
                raise errors.TooManyRequests(
                    f"{self.limit} of your commands are running on {system} at once, the most allowed: wait for "
                    "one to end, then try again", "Too many commands at once")
            self._held[user] = self._held.get(user, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._held[user] -= 1
                if not self._held[user]:
                    del self._held[user]


@dataclass(eq=False)
class Connection:
    transport: paramiko.Transport
    opened_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    channels: int = 0  # channels open right now
    retired: bool = False  # given up: no new channels; closed when its last one ends

    def usable(self, now: float, max_age: float) -> bool:
        return not self.retired and self.transport.is_active() and now - self.opened_at < max_age


class SSHPool:
    def __init__(self, site: Site, certificator: CertificatorClient) -> None:
        self.site = site
        self.certificator = certificator
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], list[Connection]] = {}
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self.slots = UserSlots(site.limits.sync_commands_per_user)
        self.opened = 0  # connections opened since start (tests and benchmarks read it)

    # -- connections ---------------------------------------------------------------------------------------

    def _take(self, key: tuple[str, str]) -> Connection | None:
        """A connection with a free channel slot, reserving the slot; closes idle and old ones on the way."""
        now = time.monotonic()
        cfg = self.site.ssh
        with self._lock:
            conns = self._pools.setdefault(key, [])
            for conn in list(conns):
                stale = not conn.usable(now, cfg.max_age_s) or now - conn.last_used > cfg.idle_close_s
                if stale and conn.channels == 0:
                    conns.remove(conn)
                    conn.transport.close()
                    metrics.ssh_closed(key[0])
            for conn in conns:
                if conn.usable(now, cfg.max_age_s) and conn.channels < cfg.max_channels_per_connection:
                    conn.channels += 1
                    conn.last_used = now
                    return conn
        return None

    def _acquire(self, system: System, identity: Identity, request_id: str) -> Connection:
        key = (system.name, identity.username)
        conn = self._take(key)
        if conn:
            return conn
        with self._lock:
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:  # one connection opens per user at a time; the others wait and then share it
            conn = self._take(key)
            if conn:
                return conn
            with metrics.ssh_connecting(system.name):
                conn = Connection(self._open(system, identity, request_id), channels=1)
            with self._lock:
                self._pools[key].append(conn)
                self.opened += 1
            return conn

    def _release(self, conn: Connection, broken: bool = False) -> None:
        """Give back a channel slot. A broken connection takes no new channels, but is closed only when its last
        channel ends: the user's other commands on it (a check while a transfer's job fails) finish normally."""
        with self._lock:
            conn.channels -= 1
            conn.last_used = time.monotonic()
            if broken and not conn.retired:
                conn.retired = True
                for (system, user), conns in self._pools.items():
                    if conn in conns:
                        conns.remove(conn)
                        metrics.ssh_closed(system)
                        log.info("SSH connection of %s to %s given up after a failure; %d other command(s) on it "
                                 "finish first", user, system, conn.channels)
            if conn.retired and conn.channels == 0:
                conn.transport.close()

    def _open(self, system: System, identity: Identity, request_id: str) -> paramiko.Transport:
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
        key = paramiko.Ed25519Key.from_private_key(StringIO(pem))
        cert = self.certificator.certificate(identity, system.name, public.decode(), request_id)
        key.load_certificate(cert)  # the certificate line itself

        timeout = self.site.ssh.connect_timeout_s
        try:
            sock = socket.create_connection((system.host, system.port), timeout=timeout)
        except OSError as e:
            raise errors.MachineNotAvailable(f"cannot connect to {system.name}: {e.strerror or e}") from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per exec (delayed ACK)
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = timeout
            transport.auth_timeout = timeout
            transport.start_client(timeout=timeout)
            self._verify_host_key(system, transport.get_remote_server_key())
            transport.auth_publickey(identity.username, key)
        except paramiko.AuthenticationException as e:
            transport.close()
            raise errors.PermissionDenied(
                f"User does not have permissions to access machine: {e}",
                header_value="User does not have permissions to access machine",
            ) from e
        except (paramiko.SSHException, OSError, EOFError) as e:
            transport.close()
            raise errors.MachineNotAvailable(f"SSH to {system.name} failed: {e}") from e
        transport.set_keepalive(30)
        return transport

    @staticmethod
    def _verify_host_key(system: System, key: paramiko.PKey) -> None:
        kind, blob = system.host_key.split()
        if key.get_name() != kind or key.asbytes() != base64.b64decode(blob):
            raise paramiko.SSHException(f"host key of {system.name} does not match the pinned key")

    # -- commands --------------------------------------------------------------------------------------------

    def run(self, system: System, identity: Identity, command: Command[T], request_id: str = "",
            stdin: bytes | None = None, max_output: int | None = None) -> T:
        """Run `command` as the user; `stdin`, when given (even empty), is sent and closed."""
        with self.slots.hold(identity, system.name):
            return self._run(system, identity, command, request_id, stdin, max_output)

    def _run(self, system: System, identity: Identity, command: Command[T], request_id: str,
             stdin: bytes | None, max_output: int | None) -> T:
        timeout_s = self.site.limits.command_timeout_s if command.timeout else None
        line = command.line(timeout_s, request_id)
        # A pooled connection may have died since its last use (sshd restarted): retry on a new one. A refused
        # channel ("no more sessions") leaves the connection usable: retry after a moment.
        failures = 0
        while True:
            conn = self._acquire(system, identity, request_id)
            broken = False
            try:
                output = self._exec(conn.transport, line, stdin, timeout_s, max_output)
            except paramiko.ChannelException as e:
                failures += 1
                if failures >= 5:
                    raise errors.MachineNotAvailable(f"{system.name} refuses new sessions: {e}") from e
                time.sleep(0.01 * failures)
                continue
            except (paramiko.SSHException, EOFError, OSError) as e:
                broken = True
                failures += 1
                if failures >= 2:
                    raise errors.MachineNotAvailable(f"SSH to {system.name} failed: {e}") from e
                continue
            except errors.FirecrestError as e:  # too much output, or our own deadline passed
                raise e.with_description(f"Error on {command.name} operation") from None
            finally:
                self._release(conn, broken)
            metrics.command_ended(system.name, command.name, output)
            return command.result(output)

    @contextmanager
    def feed(self, system: System, identity: Identity, command: Command[T], request_id: str = "") -> Iterator[Feed[T]]:
        """Start `command` and write its stdin while it runs (a transfer job fed piece by piece); the caller
        ends with `Feed.finish()`. If the command did not finish (the caller gave up, or SSH failed), the
        connection is given up afterwards: input sent to a channel the server has closed can make sshd close the
        whole connection. A command that finished, even with an error, leaves it in the pool."""
        line = command.line(None, request_id)
        conn = self._acquire(system, identity, request_id)
        try:
            chan = conn.transport.open_session(timeout=10)
        except (paramiko.SSHException, EOFError, OSError) as e:
            self._release(conn, broken=True)
            raise errors.MachineNotAvailable(f"SSH to {system.name} failed: {e}") from e
        job: Feed[T] | None = None
        try:
            chan.exec_command(line)
            job = Feed(chan, command, system.name)
            yield job
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise errors.MachineNotAvailable(f"SSH to {system.name} failed: {e}") from e
        finally:
            chan.close()
            # A command that ended is no harm to its connection, whatever its result (a transfer job that failed
            # raises from finish()); one given up while it ran may still have input on the way.
            self._release(conn, broken=job is None or not job.finished)

    @staticmethod
    def _exec(transport: paramiko.Transport, line: str, stdin: bytes | None, timeout_s: int | None,
              max_output: int | None) -> Output:
        deadline = time.monotonic() + (timeout_s + STATUS_GRACE_S if timeout_s else 3600)
        chan = transport.open_session(timeout=10)
        try:
            chan.exec_command(line)
            if stdin is not None:
                _send_input(transport, chan, stdin)
            return _collect(chan, deadline, max_output)
        finally:
            chan.close()

    def close(self) -> None:
        with self._lock:
            for (system, _), conns in self._pools.items():
                for conn in conns:
                    conn.transport.close()
                metrics.ssh_closed(system, len(conns))
            self._pools.clear()


def _send_input(transport: paramiko.Transport, chan: paramiko.Channel, data: bytes) -> None:
    """Write a command's input, then EOF. A command that exits before reading it all (dd that cannot open its
    target) closes the channel under us: that is the command's result (its status and stderr), not a dead
    connection, as long as the connection itself is alive."""
    try:
        # EOF only after input: sent on a channel the server has already closed (a quick command without
        # input), it made sshd drop the whole connection ("ieof ... nonexistent channel").
        chan.sendall(data)
        chan.shutdown_write()
    except OSError:
        if not transport.is_active() or not (chan.closed or chan.eof_received or chan.exit_status_ready()):
            raise


def _collect(chan: paramiko.Channel, deadline: float, max_output: int | None,
             watch: Watch | None = None) -> Output:
    """Read a command's output until it exits (or the deadline passes). `watch`, if given, is called every
    WATCH_EVERY_S while the command runs; what it raises ends the wait (the caller then drops the channel)."""
    out, err = bytearray(), bytearray()
    next_watch = time.monotonic() + WATCH_EVERY_S

    def drain() -> None:
        while chan.recv_ready():
            out.extend(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.extend(chan.recv_stderr(65536))
        if max_output is not None and len(out) > max_output:
            raise errors.SizeLimit("Output exceeds size limit")

    while True:
        drain()
        if (chan.eof_received or chan.closed) and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        now = time.monotonic()
        if now >= deadline:
            raise errors.Timeout()
        if watch is not None and now >= next_watch:
            watch()
            next_watch = time.monotonic() + WATCH_EVERY_S
        select.select([chan], [], [], min(deadline, next_watch) - now if watch else deadline - now)
    drain()
    if chan.closed and chan.exit_status == -1:
        # Closed with no exit status (paramiko's -1): nothing more will come, so waiting for the deadline would
        # only turn the loss into a false X-Timeout or a meaningless "exit status -1" (a user's mistake, 400).
        transport = chan.get_transport()
        if transport is None or not transport.is_active():
            raise errors.MachineNotAvailable("the connection to the login node was lost while the command ran")
        raise errors.RemoteError("The command ended without an exit status (killed by a signal)")
    if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
        raise errors.Timeout()
    return Output(chan.exit_status, bytes(out), bytes(err))


class Feed(Generic[T]):
    """A running command whose input is still being written."""

    def __init__(self, chan: paramiko.Channel, command: Command[T], system: str = "") -> None:
        self.chan, self.command, self.system = chan, command, system
        self.finished = False

    @property
    def running(self) -> bool:
        return not (self.chan.exit_status_ready() or self.chan.closed)

    def send(self, data: bytes) -> None:
        if self.running:
            self.chan.sendall(data)

    def finish(self, timeout_s: float = 3600, watch: Watch | None = None) -> T:
        """End the input (if the command still reads it), wait for the command (calling `watch` now and then:
        see _collect), and parse its result."""
        if self.running:
            self.chan.shutdown_write()
        output = _collect(self.chan, time.monotonic() + timeout_s, None, watch)
        self.finished = True
        metrics.command_ended(self.system, self.command.name, output)
        return self.command.result(output)
