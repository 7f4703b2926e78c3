"""A hostile user against the site itself: alice, with a shell's worth of access (her own processes and batch
jobs), looks for the site's secrets in every file under the state directory and connects to every backend port.
Nothing may leak, and nothing of the site may be hers."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
import requests
from gateway_client import Api

from common.stack_env import REPO

CLUSTER_USERS = ("alice", "bob")
# Ports of daemons that do not authenticate, or that only the site itself uses (firewall.py's BACKENDS).
BACKEND_PORTS = {"swift-object": 6200, "swift-container": 6201, "swift-account": 6202, "memcached": 11212,
                 "mariadb": 3307, "redis": 6380, "keycloak-management": 9180, "certificator": 5100,
                 "status": 5101, "storage": 5102, "tasks": 5103, "utilities": 5104, "compute": 5106,
                 "apidocs": 5108}
PUBLIC_PORTS = {"gateway": 8000, "swift-proxy": 8080, "keycloak": 8180}  # reachable, so the probe itself works
EXTRA_DIRS = (Path("/etc/swift"), Path("/var/cache/firecrest"))
CHUNK = 1 << 20

# Run as the user: prints every path of stdin that the user can open for reading.
READABLE_PROBE = """
import os, sys
for line in sys.stdin:
    path = line.rstrip("\\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        continue
    os.close(fd)
    print(path)
"""


def as_user(user: str, argv: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    """A process of the user's own on the site's machine, with nothing inherited from the tests."""
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", *argv],
                          input=stdin, capture_output=True, text=True, cwd="/", timeout=120)


def site_files(site) -> list[Path]:
    files = []
    for top in (site.dir, *EXTRA_DIRS):
        for root, _dirs, names in os.walk(top):
            files.extend(Path(root, n) for n in names if Path(root, n).is_file() and not Path(root, n).is_symlink())
    return files


def site_secrets(site) -> dict[str, bytes]:
    """Every secret the site holds, as bytes to look for: generated passwords, tokens and keys, private keys."""
    found = {name: value.encode() for name, value in json.loads((site.dir / "secrets.json").read_text()).items()}
    for name, path in (("user CA key", site.dir / "ca" / "user_ca"),
                       ("login host key", site.dir / "login" / "ssh_host_ed25519_key")):
        body = path.read_text().splitlines()[1:-1]  # the PEM's base64 lines
        found[name] = max(body, key=len).encode()
    found["munge key"] = (site.dir / "munge" / "munge.key").read_bytes()[:64]
    return found


def leaks(path: Path, secrets: dict[str, bytes]) -> list[str]:
    tail, names = b"", []
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                window = tail + chunk
                names += [name for name, value in secrets.items() if value in window and name not in names]
                tail = window[-256:]
    except FileNotFoundError:  # a running job's file, gone since the probe
        pass
    return names


@pytest.mark.parametrize("user", CLUSTER_USERS)
def test_no_file_a_user_can_read_holds_a_secret(site, user):
    files = site_files(site)
    readable = as_user(user, ["/usr/bin/python3", "-c", READABLE_PROBE], "\n".join(map(str, files))).stdout.split("\n")
    readable = [Path(p) for p in readable if p]
    assert readable, "the probe found nothing at all: it is broken, not the site safe"
    secrets = site_secrets(site)
    found = {str(p): names for p in readable if (names := leaks(p, secrets))}
    assert found == {}
    # The files that hold secrets by design are closed to the user, not merely free of a known value.
    private = {site.dir / "secrets.json", site.dir / "env", site.dir / "ca" / "user_ca", site.dir / "scratch.img",
               site.dir / "munge" / "munge.key", site.dir / "login" / "ssh_host_ed25519_key",
               *(site.dir / "keycloak" / "data").rglob("*"), *(site.dir / "swift").glob("*.conf"),
               *(site.dir / "swift" / "devices").rglob("*.db"), *(site.dir / "redis").rglob("*"),
               site.dir / "slurm" / "etc" / "slurmdbd.conf"}
    assert sorted(map(str, private & set(readable))) == []


def test_nothing_under_the_state_directory_belongs_to_a_cluster_user(site):
    """Nothing a root daemon reads or runs can be changed by a user. The one exception is Slurm's: slurmd keeps a
    running batch job's script in a directory of the job's user under its spool (`slurm/d/job<id>`)."""
    ids = {pwd.getpwnam(u).pw_uid for u in CLUSTER_USERS}
    spool = site.dir / "slurm" / "d"
    owned = []
    for root, dirs, names in os.walk(site.dir):
        if Path(root) == spool:
            dirs[:] = [d for d in dirs if not d.startswith("job")]
        for path in (Path(root, n) for n in [*dirs, *names]):
            try:
                st = path.lstat()
            except FileNotFoundError:  # a job's file that went while we looked
                continue
            if st.st_uid in ids or st.st_gid in ids:
                owned.append(str(path))
    assert owned == []


def test_the_state_directory_cannot_be_listed_by_a_user(site):
    result = as_user("alice", ["/bin/ls", str(site.dir)])
    assert result.returncode != 0 and "Permission denied" in result.stderr


def connect_probe(ports: dict[str, int]) -> str:
    """Shell lines that print `open NAME` or `closed NAME` for each port."""
    return "\n".join(
        f"if timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then echo open {name}; "
        f"else echo closed {name}; fi"
        for name, port in ports.items()
    )


def probe_result(output: str) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in output.splitlines() if line.startswith(("open ", "closed "))}


def test_a_users_process_reaches_no_backend(site):
    result = as_user("alice", ["/bin/bash", "-c", connect_probe({**BACKEND_PORTS, **PUBLIC_PORTS})])
    seen = probe_result(result.stdout)
    assert seen == {**dict.fromkeys(BACKEND_PORTS, "closed"), **dict.fromkeys(PUBLIC_PORTS, "open")}


def finished(site, jobid: str, timeout: float = 90) -> None:
    env = {**os.environ, **site.slurm_env}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "--states=all", "-h", "-j", jobid, "-o", "%T"], env=env,
                               capture_output=True, text=True).stdout.strip()
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return
        time.sleep(0.3)
    raise AssertionError(f"job {jobid} did not finish")


def test_a_batch_job_reaches_no_backend_and_reads_no_secret(site):
    """The same probes from inside a job submitted through the API, as a user would run them."""
    secret_files = [site.dir / "secrets.json", site.dir / "keycloak" / "data" / "h2" / "keycloakdb.mv.db",
                    site.dir / "swift" / "proxy-server.conf", site.dir / "scratch.img", site.dir / "ca" / "user_ca",
                    site.dir / "redis" / "redis.conf", site.dir / "slurm" / "etc" / "slurmdbd.conf"]
    reads = "\n".join(f"head -c1 {f} >/dev/null 2>&1 && echo read {f}" for f in secret_files)
    body = f"#!/bin/bash\n{connect_probe({**BACKEND_PORTS, **PUBLIC_PORTS})}\n{reads}\necho done\n"
    api = Api(site, "alice", "compute")
    task = api.outcome(api.post("/jobs/upload", files={"file": ("probe.sh", body.encode())}), 201)
    assert task["status"] == "200", task
    finished(site, task["data"]["jobid"])
    output = Path(task["data"]["job_file_out"]).read_text()
    assert output.rstrip().endswith("done"), output
    assert probe_result(output) == {**dict.fromkeys(BACKEND_PORTS, "closed"), **dict.fromkeys(PUBLIC_PORTS, "open")}
    assert [line for line in output.splitlines() if line.startswith("read ")] == []


def placeholders_only(node: object, key: str = "") -> list[str]:
    """Secret-bearing fields of the realm file that hold a value instead of a `${VAR}` filled at import."""
    if isinstance(node, dict):
        return [bad for k, v in node.items() for bad in placeholders_only(v, k)]
    if isinstance(node, list):
        return [bad for v in node for bad in placeholders_only(v, key)]
    secret_field = key in ("secret", "value", "privateKey", "certificate", "secretData", "credentialData")
    is_placeholder = isinstance(node, str) and node.startswith("${") and node.endswith("}")
    return [f"{key}={node!r}"] if secret_field and not is_placeholder else []


def test_the_realm_ships_no_key_or_secret_and_the_site_made_its_own(site):
    realm = json.loads((REPO / "deploy" / "keycloak" / "firecrest-realm.json").read_text())
    assert placeholders_only(realm) == []
    assert "components" not in realm  # where a realm export would carry its key providers and their keys
    generated = json.loads((site.dir / "secrets.json").read_text())
    assert len(set(generated.values())) == len(generated) and min(map(len, generated.values())) >= 32
    # The signing key the gateway trusts is the one Keycloak generated for this realm at import.
    keys = requests.get(f"{site.env['KEYCLOAK_URL']}/realms/{site.env['KEYCLOAK_REALM']}/protocol/openid-connect/certs",
                        timeout=10).json()["keys"]
    assert any(k["alg"] == "RS256" and k["use"] == "sig" for k in keys)


SQUAT_PROBE = """
import errno, socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print("bound", port)
    except OSError as e:
        print(errno.errorcode[e.errno], port)
    finally:
        s.close()
"""


def test_a_user_cannot_take_a_site_port_even_while_its_daemon_is_down(site):
    """A listener of alice's on the tasks port would get the services' credential, on Keycloak's the token keys:
    every site port is privileged (the kernel refuses before it looks whether the port is in use)."""
    ports = sorted({*BACKEND_PORTS.values(), *PUBLIC_PORTS.values(), 2222, 6817, 6818, 6819})
    result = as_user("alice", ["/usr/bin/python3", "-c", SQUAT_PROBE, *map(str, ports)])
    assert result.stdout.split("\n")[:-1] == [f"EACCES {p}" for p in ports], result.stderr
