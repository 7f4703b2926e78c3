"""The login node's ForceCommand (C) splits shlex-quoted words itself and execs them; no shell sees user data."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The wrapper compiled against a test allow-list, and the datagram socket it audits to."""
    tmp = tmp_path_factory.mktemp("shell")
    allowed = tmp / "allowed"
    allowed.write_text("# test allow-list\nprintf\ntrue\nsleep  # trailing comments are fine\n")
    binary = tmp / "firecrest-shell"
    audit = tmp / "audit.sock"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", f'-DALLOWED_FILE="{allowed}"',
                    f'-DAUDIT_SOCKET="{audit}"', "-o", str(binary), str(REPO / "deploy/cluster/firecrest-shell.c")],
                   check=True)
    return binary, audit


@pytest.fixture
def shell(built):
    binary, _ = built

    def run(command: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": command}
        return subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=20)

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


def test_timeout_kills_the_command_and_exits_124(shell):
    start = time.monotonic()
    result = shell("timeout -k 1 0.5 sleep 30")
    assert result.returncode == 124
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("command", ["timeout -x 1 true", "timeout -k x 1 true", "timeout 1x true",
                                     "timeout -s NOPE 1 true", "timeout --kill-after 1"])
def test_bad_timeout_options_are_refused(shell, command):
    assert shell(command).returncode == 126


def test_each_command_sends_one_audit_record(built):
    binary, audit = built
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        audit.unlink(missing_ok=True)
        sock.bind(str(audit))
        sock.settimeout(5)
        env = {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": "ID=req-9 printf %s x"}
        subprocess.run([str(binary)], env=env, capture_output=True, check=True)
        assert sock.recv(65536) == b"firecrest-shell: 0 - req-9 ID=req-9 printf %s x"
        env["SSH_ORIGINAL_COMMAND"] = "printf x\x01y"
        subprocess.run([str(binary)], env=env, capture_output=True)
        assert sock.recv(65536) == b"firecrest-shell: 126 - - printf x\\x01y"
