"""The audit collector reads the key id out of the certificate and never trusts the rest for identity."""

from __future__ import annotations

import subprocess
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_loader = SourceFileLoader("audit_collector", str(REPO / "deploy/cluster/audit-collector"))
collector = module_from_spec(spec_from_loader("audit_collector", _loader))
_loader.exec_module(collector)


def certificate_blob(tmp_path: Path, kind: str, key_id: str) -> str:
    ca, key = tmp_path / "ca", tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", key_id, "-n", "alice", f"{key}.pub"], check=True)
    return (tmp_path / "key-cert.pub").read_text().split()[1]


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
    blob = certificate_blob(tmp_path, "ed25519", "alice@req-7")
    message = f"<13>Nov 25 03:42:26 firecrest-shell: 0 {blob} req-7 ls -l -- 'user=root; x'".encode()
    record = collector.record(message, uid=0)
    assert record["user"] == "root" and record["uid"] == 0
    assert record["key_id"] == "alice@req-7" and record["request_id"] == "req-7"
    assert record["status"] == 0 and record["command"] == "ls -l -- 'user=root; x'"
