"""Process and file plumbing shared by every component of the embedded site.

Everything here is stdlib only: it runs before the project's virtualenv exists.
Daemons are tracked by pid file and stopped by pid, never by process name.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"


_secrets_lock = threading.Lock()


class SiteError(Exception):
    """A failure with a message meant for the person running `up`."""


@dataclass
class Stack:
    """Where the site keeps its state, and the secrets it generated once."""

    dir: Path
    repo: Path = REPO

    @classmethod
    def from_env(cls) -> Stack:
        return cls(Path(os.environ.get("FIRECREST_STACK_DIR", REPO / ".stack")).resolve())

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    @property
    def run(self) -> Path:
        return self.path("run")

    @property
    def log(self) -> Path:
        return self.path("log")

    def secret(self, name: str) -> str:
        """A random secret, created on first use and kept until `down --purge`."""
        with _secrets_lock:  # components prepare in threads; never lose a write
            store = self.path("secrets.json")
            values = json.loads(store.read_text()) if store.exists() else {}
            if name not in values:
                values[name] = secrets.token_urlsafe(24)
                write(store, json.dumps(values, indent=1), mode=0o600)
            return values[name]


@dataclass
class Daemon:
    """One long-running process of the site."""

    name: str
    argv: list[str]
    pidfile: Path
    ready: Callable[[], bool]
    user: str | None = None  # drop to this user with setpriv before exec
    daemonizes: bool = False  # the program forks and writes `pidfile` itself
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    timeout: float = 30.0
    stop_timeout: float = 15.0


def write(path: Path, text: str, mode: int = 0o644, owner: str | None = None) -> None:
    """Write a file atomically with its final mode (secrets are never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    if owner:
        chown(tmp, owner)
    os.replace(tmp, path)


def render(template: Path, dest: Path, values: dict[str, object], **kw) -> None:
    """Fill `@NAME@` placeholders; a placeholder left unfilled is a bug, so fail loudly."""
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = re.findall(r"@([A-Z][A-Z0-9_]*)@", text)
    if leftover:
        raise SiteError(f"{template}: unfilled placeholders {leftover}")
    write(dest, text, **kw)


def chown(path: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def system_user(name: str, group: str | None = None) -> str:
    """An unprivileged account for a daemon (no login, no home), created when missing; its primary group is
    `group` (created when missing) or one of its own name."""
    if group:
        try:
            grp.getgrnam(group)
        except KeyError:
            run(["groupadd", "--system", group])
    try:
        pwd.getpwnam(name)
    except KeyError:
        grouping = ["--gid", group] if group else ["--user-group"]
        run(["useradd", "--system", "--no-create-home", *grouping, "--shell", "/usr/sbin/nologin", name])
    return name


def mkdir(path: Path, mode: int = 0o755, owner: str | None = None, group: str | None = None) -> Path:
    """A directory with exactly this mode; `group` alone gives root:group (read by a daemon, written by root)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        chown(path, owner)
    elif group:
        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    return path


def run(argv: list[str], check: bool = True, input: str | None = None, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, **kw)
    if check and proc.returncode != 0:
        raise SiteError(f"{' '.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


def ok(argv: list[str], **kw) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10, **kw).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def port_owner(port: int) -> str:
    out = run(["ss", "-Hltnp", f"sport = :{port}"], check=False).stdout.strip()
    return out or "unknown process"


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True for a live process; a zombie (state Z) counts as stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def running(d: Daemon) -> bool:
    pid = read_pid(d.pidfile)
    return pid is not None and alive(pid)


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    hint = f"; see {log}" if log else ""
    raise SiteError(f"{what} not ready after {timeout:.0f} s{hint}")


def spawn(stack: Stack, d: Daemon) -> None:
    """Start a daemon in its own session (a Swift parent kills its whole process group)."""
    mkdir(stack.run)
    mkdir(stack.log)
    logfile = stack.log / f"{d.name}.log"
    argv = list(d.argv)
    if d.user:
        # The site's ports are below net.ipv4.ip_unprivileged_port_start (firewall.py), so that no user's process
        # can take one while its daemon is down; the daemon's account keeps just the right to bind them.
        argv = ["setpriv", f"--reuid={d.user}", f"--regid={d.user}", "--init-groups",
                "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", *argv]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **d.env}
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env, cwd=d.cwd, start_new_session=True
        )
    finally:
        os.close(fd)
    if d.daemonizes:
        # The program forks and writes its own pid file; the launcher exits.
        if proc.wait(timeout=d.timeout) != 0:
            raise SiteError(f"{d.name} failed to start; see {logfile}")
    else:
        write(d.pidfile, f"{proc.pid}\n")


def start(stack: Stack, d: Daemon) -> bool:
    """Start `d` unless it already runs; returns True if this call started it."""
    if running(d):
        return False
    d.pidfile.unlink(missing_ok=True)
    spawn(stack, d)
    logfile = stack.log / f"{d.name}.log"

    def up() -> bool:
        if not d.daemonizes and not running(d):
            raise SiteError(f"{d.name} exited during start-up; see {logfile}")
        return d.ready()

    try:
        wait_for(up, d.timeout, d.name, logfile)
    except BaseException:
        stop(d)  # never leave a half-started daemon behind
        raise
    return True


def stop(d: Daemon) -> bool:
    """SIGTERM the pid in the pid file, then SIGKILL after `stop_timeout`."""
    pid = read_pid(d.pidfile)
    if pid is None or not alive(pid):
        d.pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + d.stop_timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    d.pidfile.unlink(missing_ok=True)
    return True


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
