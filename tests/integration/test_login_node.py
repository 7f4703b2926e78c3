"""The login node accepts only user certificates from the site CA and runs only allow-listed commands."""

from __future__ import annotations

import json
import shlex

import paramiko
import pytest


def test_alice_certificate_logs_in_as_alice(site, alice):
    result = site.run(alice, "id")
    assert result.status == 0
    assert result.stdout.startswith("uid=") and "(alice)" in result.stdout.split()[0]


def test_bob_certificate_cannot_log_in_as_alice(site):
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", site.certificate("bob", "bob@impostor"))


def test_expired_certificate_is_refused(site):
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", site.certificate("alice", "alice@expired", validity="-10m:-5m"))


def test_key_without_certificate_is_refused(site):
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", paramiko.Ed25519Key.from_private_key_file(_plain_key(site)))


def test_certificate_from_another_ca_is_refused(site, tmp_path):
    import subprocess

    ca = tmp_path / "other_ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "alice@rogue", "-n", "alice", "-V", "-1m:+5m",
                    f"{key}.pub"], check=True)
    pkey = paramiko.Ed25519Key.from_private_key_file(str(key))
    pkey.load_certificate(f"{key}-cert.pub")
    with pytest.raises(paramiko.AuthenticationException):
        site.connect("alice", pkey)


def test_command_outside_allow_list_is_refused_and_audited(site, alice):
    result = site.run(alice, "ID=req-refused-1 python3 -V")
    assert result.status == 126
    assert "'python3' is not an allowed command" in result.stderr
    record = _audit_record(site, "req-refused-1")
    assert record["user"] == "alice" and record["key_id"] == "alice@tests"
    assert record["status"] == 126 and record["command"] == "ID=req-refused-1 python3 -V"


def test_allowed_command_is_audited_with_its_exit_status(site, alice):
    result = site.run(alice, "ID=req-allowed-1 ls -- /nonexistent-path")
    assert result.status == 2
    record = _audit_record(site, "req-allowed-1")
    assert (record["user"], record["status"], record["key_id"]) == ("alice", 2, "alice@tests")


@pytest.mark.parametrize(
    "command",
    [
        "ls; touch {canary}",
        "ls && touch {canary}",
        "ls | touch {canary}",
        "ls $(touch {canary})",
        "ls `touch {canary}`",
        "ls\ntouch {canary}",
        "ls > {canary}",
        'ls "$(touch {canary})"',
        "touch {canary} &",
    ],
)
def test_shell_syntax_never_runs(site, alice, command):
    canary = f"/home/alice/canary-{abs(hash(command))}"
    result = site.run(alice, command.format(canary=canary))
    assert result.status == 126 and "refused" in result.stderr
    assert site.run(alice, f"ls -- {canary}").status != 0


@pytest.mark.parametrize("name", ["it's $(x) `y`; z", "-rf", 'a "b" | c & d', "ünï cødé", "x" * 200])
def test_quoted_words_reach_the_program_literally(site, alice, home_dir, name):
    path = shlex.quote(f"{home_dir}/{name}")  # a fresh directory: other tests leave such names in the home
    assert site.run(alice, f"mkdir -- {path}").status == 0
    listing = site.run(alice, f"ls -1 -- {home_dir}").stdout.splitlines()
    assert listing == [name]


def test_no_interactive_shell(site, alice):
    channel = alice.get_transport().open_session()
    channel.invoke_shell()
    assert channel.recv_exit_status() == 126


def test_forwarding_is_refused(alice):
    with pytest.raises(paramiko.ChannelException):
        alice.get_transport().open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 0))


def _plain_key(site) -> str:
    import subprocess
    import tempfile

    path = f"{tempfile.mkdtemp(dir=site.workdir)}/key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def _audit_record(site, request_id: str) -> dict:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in reversed(site.audit_lines()):
            record = json.loads(line)
            if record["request_id"] == request_id:
                return record
        time.sleep(0.05)
    raise AssertionError(f"no audit record for {request_id}")
