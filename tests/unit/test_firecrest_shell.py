"""The login node's ForceCommand (C) splits shlex-quoted words itself and execs them; no shell sees user data.
Nothing runs before the audit collector has acknowledged the command's start record."""

from __future__ import annotations

import os
import queue
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WAIT = 20  # seconds: a bound on waiting for something that must happen, never a measured threshold


class FakeCollector:
    """The audit collector's side of the protocol: answers each start record with "ok" (unless `hold` is set,
    then only once it is cleared) and hands over each connection's messages when it closes."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.starts: queue.Queue[bytes] = queue.Queue()
        self.closed: queue.Queue[list[bytes]] = queue.Queue()
        self.release = threading.Event()
        self.release.set()
        self.answer = b"ok"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        messages = []
        with conn:
            while data := conn.recv(1 << 17):
                messages.append(data)
                if data.startswith(b"start "):
                    self.starts.put(data)
                    self.release.wait()
                    if self.answer:
                        conn.send(self.answer)
                    else:
                        break
        self.closed.put(messages)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The wrapper compiled against a test allow-list, and the path of the collector's socket."""
    tmp = tmp_path_factory.mktemp("shell")
    allowed = tmp / "allowed"
    allowed.write_text("# test allow-list\nprintf\ntrue\nsleep  # trailing comments are fine\ntouch\nls\n")
    binary = tmp / "firecrest-shell"
    audit = tmp / "audit.sock"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", f'-DALLOWED_FILE="{allowed}"',
                    f'-DAUDIT_SOCKET="{audit}"', "-o", str(binary), str(REPO / "deploy/cluster/firecrest-shell.c")],
                   check=True)
    return binary, audit


@pytest.fixture
def collector(built) -> Iterator[FakeCollector]:
    fake = FakeCollector(built[1])
    yield fake
    fake.release.set()
    fake.close()


def environment(command: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": command}


@pytest.fixture
def shell(built, collector):
    binary, _ = built

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(binary)], env=environment(command), capture_output=True, text=True, timeout=WAIT)

    return run


HOSTILE = ["it's", 'say "hi"', "$(id)", "`id`", "a; b", "a | b", "a && b", "-rf", "..", "../../etc/passwd",
           "ünïcødé", "tab\there", "x" * 4096, "", " ", "'", "\\", "*", "~", "$HOME", "a\\'b"]


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\t" not in v])
def test_quoted_value_arrives_literally(shell, value):
    result = shell(f"printf %s/ {shlex.quote(value)}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{value}/"


@pytest.mark.parametrize(
    "command",
    [
        "printf x; id", "printf $(id)", "printf `id`", "printf x | id", "printf x > /tmp/f", 'printf "x"', "printf \\x",
        "printf x\nid", "printf\tx", "id", "/usr/bin/printf x", "../printf x", "", "timeout", "timeout 5",
        "timeout x printf",
    ],
)
def test_anything_else_is_refused(shell, command):
    result = shell(command)
    assert result.returncode == 126
    assert result.stderr.startswith("firecrest-shell: refused:")
    assert result.stdout == ""


def test_timeout_prefix_and_request_id(shell):
    result = shell("ID=req-1 timeout --signal=KILL -k 1 5 printf %s ok")
    assert (result.returncode, result.stdout) == (0, "ok")


def test_exit_status_is_the_program_status(shell):
    assert shell("printf").returncode == 1  # printf without a format


def test_timeout_kills_the_command_and_exits_124(shell, collector):
    result = shell("timeout -k 1 0.5 sleep 300")  # 124 only if the wrapper's timer ended it
    assert result.returncode == 124
    assert collector.closed.get(timeout=WAIT)[-1] == b"end 124"


@pytest.mark.parametrize("command", ["timeout -x 1 true", "timeout -k x 1 true", "timeout 1x true",
                                     "timeout -s NOPE 1 true", "timeout --kill-after 1"])
def test_bad_timeout_options_are_refused(shell, command):
    assert shell(command).returncode == 126


def test_each_command_sends_a_start_and_an_end_record(shell, collector):
    shell("ID=req-9 printf %s x")
    assert collector.closed.get(timeout=WAIT) == [b"start - req-9 ID=req-9 printf %s x", b"end 0"]
    shell("printf x\x01y")
    assert collector.closed.get(timeout=WAIT) == [b"start - - printf x\\x01y", b"end 126"]


def test_a_long_command_line_is_recorded_truncated_and_marked(shell, collector):
    value = "x" * 100_000
    assert shell(f"printf %.3s {value}").stdout == "xxx"
    start, end = collector.closed.get(timeout=WAIT)
    assert len(start) <= 65536 and start.endswith(b"x [truncated]") and end == b"end 0"


def test_nothing_runs_before_the_start_record_is_acknowledged(built, collector, tmp_path):
    canary = tmp_path / "canary"
    collector.release.clear()
    proc = subprocess.Popen([str(built[0])], env=environment(f"touch -- {canary}"))
    try:
        assert collector.starts.get(timeout=WAIT).endswith(f"touch -- {canary}".encode())
        assert not canary.exists()  # the wrapper is waiting for "ok"
    finally:
        collector.release.set()
    assert proc.wait(timeout=WAIT) == 0
    assert canary.exists()


@pytest.mark.parametrize("answer", [b"", b"no"])
def test_without_an_acknowledgement_nothing_runs(built, collector, tmp_path, answer):
    canary = tmp_path / "canary"
    collector.answer = answer
    result = subprocess.run([str(built[0])], env=environment(f"touch -- {canary}"), capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 126 and "the audit log is unavailable" in result.stderr
    assert not canary.exists()


def test_without_a_collector_nothing_runs(built, tmp_path):
    built[1].unlink(missing_ok=True)
    canary = tmp_path / "canary"
    result = subprocess.run([str(built[0])], env=environment(f"touch -- {canary}"), capture_output=True, text=True,
                            timeout=WAIT)
    assert result.returncode == 126 and "the audit log is unavailable" in result.stderr
    assert not canary.exists()


def test_the_command_does_not_inherit_the_audit_connection(shell):
    result = shell("ls -l /proc/self/fd/")
    assert result.returncode == 0 and "socket:" not in result.stdout, result.stdout


def test_a_killed_wrapper_has_sent_its_start_record(built, collector):
    """SIGKILL of the wrapper (its user may) while the command runs: the start record is already there."""
    proc = subprocess.Popen([str(built[0])], env=environment("ID=req-kill sleep 300"))
    assert collector.starts.get(timeout=WAIT) == b"start - req-kill ID=req-kill sleep 300"
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + WAIT
    while not (child := children.read_text().split()) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=WAIT)
    os.killpg(int(child[0]), signal.SIGKILL)  # the orphaned command's own process group
    assert collector.closed.get(timeout=WAIT) == [b"start - req-kill ID=req-kill sleep 300"]
