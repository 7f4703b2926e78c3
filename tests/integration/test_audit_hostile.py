"""The login node's audit log as a hostile user tries it: alice's own processes and batch jobs cannot reach the
collector's socket (so they cannot forge records), the setgid wrapper gives her nothing but its one connection,
and killing the wrapper leaves a record of the command ("lost": its exit status is unknown)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import random
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

WAIT = 30  # seconds: a bound on waiting for what must happen, never a measured threshold
GROUP = "firecrest-audit"


def as_alice(*argv: str) -> subprocess.CompletedProcess:
    """A process of alice's own, outside sshd and the wrapper."""
    return subprocess.run(["setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env", *argv],
                          capture_output=True, text=True, timeout=WAIT)


def wait_record(site, request_id: str) -> dict:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for record in site.audit_records({request_id}):
            return record
        time.sleep(0.05)
    raise AssertionError(f"no audit record for {request_id}")


def find_process(uid: int, argv: list[str]) -> int:
    deadline = time.monotonic() + WAIT
    wanted = [a.encode() for a in argv]
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and entry.stat().st_uid == uid and \
                        (entry / "cmdline").read_bytes().split(b"\0")[:-1] == wanted:
                    return int(entry.name)
            except OSError:
                continue  # gone meanwhile
        time.sleep(0.02)
    raise AssertionError(f"no process {argv}")


CONNECT = """
import socket, sys
path, rid = sys.argv[1], sys.argv[2]
for kind in ("SOCK_SEQPACKET", "SOCK_DGRAM", "SOCK_STREAM"):
    s = socket.socket(socket.AF_UNIX, getattr(socket, kind))
    try:
        if kind == "SOCK_DGRAM":
            s.sendto(f"firecrest-shell: 0 - {rid} forged".encode(), path)
        else:
            s.connect(path)
            s.send(f"start - {rid} forged".encode())
            s.send(b"end 0")
        print(kind, "sent")
    except OSError as e:
        print(kind, type(e).__name__)
"""


def test_socket_and_wrapper_modes(site):
    sock, wrapper = site.dir / "login" / "audit" / "audit.sock", site.dir / "login" / "firecrest-shell"
    group, collector = grp.getgrnam(GROUP), pwd.getpwnam(GROUP)  # the collector's account has the group's name
    # No one is in the group but the collector's own account.
    assert group.gr_mem == [] and [p.pw_name for p in pwd.getpwall() if p.pw_gid == group.gr_gid] == [GROUP]
    st = sock.parent.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (collector.pw_uid, group.gr_gid, 0o750)
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (collector.pw_uid, group.gr_gid, 0o660)
    st = wrapper.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, group.gr_gid, 0o2755)
    log = site.dir / "log" / "audit.log"
    assert (log.stat().st_uid, stat.S_IMODE(log.stat().st_mode)) == (collector.pw_uid, 0o600)


def test_alice_cannot_reach_the_audit_socket(site):
    rid = f"forged-local-{uuid.uuid4().hex[:8]}"
    result = as_alice("/usr/bin/python3", "-c", CONNECT, str(site.dir / "login" / "audit" / "audit.sock"), rid)
    assert result.stdout.split("\n")[:3] == [f"{k} PermissionError" for k in ("SOCK_SEQPACKET", "SOCK_DGRAM",
                                                                              "SOCK_STREAM")], result
    assert site.audit_records({rid}) == []


def rogue_auth_file(directory: Path) -> Path:
    """An ExposeAuthInfo-like file naming a certificate for alice, key id bob@forged, from a CA of her own."""
    ca, key = directory / "rogue_ca", directory / "key"
    for path in (ca, key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "bob@forged", "-n", "alice", f"{key}.pub"], check=True)
    blob = (directory / "key-cert.pub").read_text().split()[1]
    auth = directory / "auth"
    auth.write_text(f"publickey ssh-ed25519-cert-v01@openssh.com {blob}\n")
    auth.chmod(0o644)
    return auth


def test_a_batch_job_cannot_forge_a_record(site, alice, home_dir):
    """From a job, the socket is closed to alice; the wrapper itself she may run, but then it records what really
    runs, as her, the command gets none of the wrapper's group, and a certificate of her own making names no key."""
    rid = f"forged-job-{uuid.uuid4().hex[:8]}"
    wrapper = site.dir / "login" / "firecrest-shell"
    script = (f"#!/bin/bash\n/usr/bin/python3 -c '{CONNECT}' {site.dir / 'login' / 'audit' / 'audit.sock'} {rid}\n"
              f"SSH_USER_AUTH={rogue_auth_file(home_dir)} SSH_ORIGINAL_COMMAND='ID={rid}-wrapper id -G' {wrapper}\n")
    out = home_dir / "job.out"
    result = site.run(alice, f"sbatch --wait --parsable --output={out}", stdin=script.encode())
    assert result.status == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[:3] == ["SOCK_SEQPACKET PermissionError", "SOCK_DGRAM PermissionError",
                         "SOCK_STREAM PermissionError"], lines
    assert str(grp.getgrnam(GROUP).gr_gid) not in lines[3].split()  # `id -G` as the wrapper ran it
    record = wait_record(site, f"{rid}-wrapper")  # written after the attempts above: they would be in by now
    assert (record["user"], record["uid"], record["status"]) == ("alice", pwd.getpwnam("alice").pw_uid, 0)
    assert record["key_id"] == "-"  # not "bob@forged": the site's CA did not sign it
    assert site.audit_records({rid}) == []


def test_a_killed_wrapper_leaves_a_record_and_gives_alice_nothing(site, alice):
    rid = f"killed-{uuid.uuid4().hex[:8]}"
    duration = f"{random.randint(200, 299)}.{random.randint(1000, 9999)}"  # names the process
    channel = alice.get_transport().open_session()
    channel.exec_command(f"ID={rid} sleep {duration}")
    uid, gid = pwd.getpwnam("alice").pw_uid, pwd.getpwnam("alice").pw_gid
    command = find_process(uid, ["sleep", duration])  # it runs: the collector has its start record
    try:
        wrapper = int(Path(f"/proc/{command}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert os.readlink(f"/proc/{wrapper}/exe") == str(site.dir / "login" / "firecrest-shell")
        gids = next(x for x in Path(f"/proc/{wrapper}/status").read_text().splitlines() if x.startswith("Gid:"))
        assert gids.split()[1:] == [str(gid)] * 4  # real, effective, saved, fs: the audit group is gone
        traced = as_alice("strace", "-p", str(wrapper))
        assert traced.returncode != 0 and "Operation not permitted" in traced.stderr
        assert as_alice("ls", f"/proc/{wrapper}/fd").returncode != 0  # its connection is out of her reach
        assert as_alice("kill", "-KILL", str(wrapper)).returncode == 0  # but she may kill it
        record = wait_record(site, rid)
        assert (record["user"], record["key_id"], record["status"]) == ("alice", "alice@tests", "lost")
        assert record["command"] == f"ID={rid} sleep {duration}"
    finally:
        os.killpg(command, signal.SIGKILL)  # the command's own process group
        channel.close()


def test_records_are_written_by_the_collector_as_json_lines(site, alice):
    rid = f"plain-{uuid.uuid4().hex[:8]}"
    assert site.run(alice, f"ID={rid} true").status == 0
    record = wait_record(site, rid)
    assert set(record) == {"time", "user", "uid", "key_id", "request_id", "status", "command", "started"}
    assert record["started"] <= record["time"] and record["status"] == 0
    assert json.dumps(record)  # one line, as the tests and benchmarks read it
