"""The login node's ForceCommand splits shlex-quoted words itself and execs them; no shell sees user data."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shell(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.write_text("# test allow-list\nprintf\ntrue\n")
    script = (REPO / "deploy/cluster/firecrest-shell").read_text()
    script = script.replace("@ALLOWED_FILE@", str(allowed)).replace("@AUDIT_SOCKET@", str(tmp_path / "none.sock"))
    path = tmp_path / "firecrest-shell"
    path.write_text(script)

    def run(command: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": command}
        return subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=10)

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
    assert shell("printf").returncode == 2  # printf without a format
