"""The audit collector: the key id read out of the certificate, the user from the kernel, one line per command
written when it ends, and a command whose wrapper vanished recorded as "lost", never missing."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_loader = SourceFileLoader("audit_collector", str(REPO / "deploy/cluster/audit-collector"))
collector = module_from_spec(spec_from_loader("audit_collector", _loader))
sys.modules["audit_collector"] = collector  # dataclasses look their module up
_loader.exec_module(collector)
WAIT = 20  # seconds: a bound on waiting for what must happen


def certificate_blob(tmp_path: Path, kind: str, key_id: str, principal: str = "alice", ca_name: str = "ca") -> str:
    ca, key = tmp_path / ca_name, tmp_path / f"key-{key_id}"
    if not ca.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", key_id, "-n", principal, f"{key}.pub"], check=True)
    return (tmp_path / f"key-{key_id}-cert.pub").read_text().split()[1]


def ca_keys(tmp_path: Path, ca_name: str = "ca") -> frozenset[bytes]:
    return collector.read_ca_keys(str(tmp_path / f"{ca_name}.pub"))


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_key_id_of_each_certificate_type(tmp_path, kind):
    assert collector.key_id(certificate_blob(tmp_path, kind, f"alice@req-{kind}")) == f"alice@req-{kind}"


def test_plain_key_and_garbage_have_no_key_id(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    plain = (tmp_path / "k.pub").read_text().split()[1]
    assert collector.key_id(plain) == "-"
    assert collector.key_id("not base64 at all!") == "-"
    assert collector.key_id("AAAA") == "-"


def test_record_takes_the_user_from_the_kernel_not_the_message(tmp_path):
    blob = certificate_blob(tmp_path, "ed25519", "root@req-7", principal="root")
    cmd = collector.parse_start(f"start {blob} req-7 ls -l -- 'user=root; x'".encode(), 0, ca_keys(tmp_path))
    record = collector.record(cmd, 0)
    assert record["user"] == "root" and record["uid"] == 0
    assert record["key_id"] == "root@req-7" and record["request_id"] == "req-7"
    assert record["status"] == 0 and record["command"] == "ls -l -- 'user=root; x'"


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_the_key_id_of_a_certificate_of_the_site_ca_for_the_user(tmp_path, kind):
    blob = certificate_blob(tmp_path, kind, f"alice@req-{kind}")
    assert collector.trusted_key_id(blob, "alice", ca_keys(tmp_path)) == f"alice@req-{kind}"


def test_no_key_id_from_a_certificate_of_another_ca_another_user_or_tampered(tmp_path):
    """A job may run the wrapper with SSH_USER_AUTH naming a file of its own: only the site's CA counts."""
    own_ca = certificate_blob(tmp_path, "ed25519", "bob@forged", ca_name="rogue")
    mine = certificate_blob(tmp_path, "ed25519", "alice@real")
    site = ca_keys(tmp_path)
    assert collector.trusted_key_id(own_ca, "alice", site) == "-"  # signed by a CA of her own
    assert collector.trusted_key_id(mine, "bob", site) == "-"  # alice's certificate in a record of bob's
    raw = bytearray(base64.b64decode(mine))
    at = raw.index(b"alice@real")
    raw[at : at + 10] = b"bob@forged"  # same length, signature no longer matches
    assert collector.trusted_key_id(base64.b64encode(bytes(raw)).decode(), "alice", site) == "-"
    assert collector.trusted_key_id("-", "alice", site) == "-"
    assert collector.trusted_key_id("AAAA", "alice", site) == "-"


@pytest.mark.parametrize("message", [b"", b"start", b"start - rid", b"end 0", b"firecrest-shell: 0 - rid ls"])
def test_anything_but_a_start_record_is_not_a_start(message):
    assert collector.parse_start(message, 0, frozenset()) is None


@pytest.fixture
def running(tmp_path) -> Iterator[tuple[Path, Path, socket.socket]]:
    """The collector serving a socket in tmp_path (as the test's own user and group); yields the socket path,
    the log and the socket that stops it."""
    path, log = tmp_path / "audit.sock", tmp_path / "audit.log"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(16)
    stop, wakeup = socket.socketpair()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    serve = collector.Collector(listener, fd, os.getegid(), wakeup, frozenset()).serve
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, log, stop
    stop.send(b"x")
    thread.join(timeout=WAIT)
    os.close(fd)
    listener.close()


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(WAIT)
    sock.connect(str(path))
    return sock


def lines(log: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + WAIT
    while len(found := log.read_text().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return [json.loads(line) for line in found]


def test_one_line_per_command_when_it_ends(running):
    path, log, _ = running
    with connect(path) as sock:
        sock.send(b"start - rid-1 ID=rid-1 ls -- x")
        assert sock.recv(16) == b"ok"
        assert log.read_text() == ""  # written when the command ends, with its status
        sock.send(b"end 2")
    [line] = lines(log, 1)
    assert (line["request_id"], line["status"], line["command"]) == ("rid-1", 2, "ID=rid-1 ls -- x")
    assert (line["uid"], line["key_id"]) == (os.getuid(), "-") and line["started"] <= line["time"]


def test_a_vanished_wrapper_leaves_a_lost_record(running):
    path, log, _ = running
    with connect(path) as sock:
        sock.send(b"start - rid-2 ID=rid-2 sleep 300")
        assert sock.recv(16) == b"ok"
    [line] = lines(log, 1)
    assert (line["request_id"], line["status"]) == ("rid-2", "lost")


def test_commands_in_flight_are_written_when_the_collector_stops(running):
    path, log, stop = running
    with connect(path) as sock:
        sock.send(b"start - rid-3 ID=rid-3 sleep 300")
        assert sock.recv(16) == b"ok"
        stop.send(b"x")
        [line] = lines(log, 1)
        assert (line["request_id"], line["status"]) == ("rid-3", "lost")


@pytest.mark.parametrize("first", [b"end 0", b"firecrest-shell: 0 - rid-4 ls", b"start"])
def test_a_connection_without_a_valid_start_record_gets_no_answer(running, first):
    path, log, _ = running
    with connect(path) as sock:
        sock.send(first)
        assert sock.recv(16) == b""  # closed, no "ok"
    with connect(path) as sock:  # the collector is still there
        sock.send(b"start - rid-5 true")
        assert sock.recv(16) == b"ok"
        sock.send(b"end 0")
    assert [line["request_id"] for line in lines(log, 1)] == ["rid-5"]
