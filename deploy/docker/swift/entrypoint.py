"""Starts one role of Swift (`proxy` or `storage`, the first argument or SWIFT_ROLE) in the foreground, as the
native site does (deploy/local/stack/components/swift.py), and stops when any of its daemons stops.

Secrets: a file /run/secrets/<name> (or the path in <NAME>_FILE), else the environment variable <NAME>:
    SWIFT_HASH_PATH_PREFIX, SWIFT_HASH_PATH_SUFFIX   both roles, the same on both; never change them once data
                                                     exists (the first start records a digest, a later start with
                                                     other values refuses to run)
    SWIFT_KEY                                        proxy: tempauth's key for SWIFT_USER
Settings (environment):
    SWIFT_USER          proxy: tempauth's `account:user` (default firecrest:gateway, as the services' SWIFT_USER)
    SWIFT_PUBLIC_URL    proxy: the proxy's URL as its clients reach it, for the storage URL tempauth hands out
                        (default http://swift-proxy:8080)
    SWIFT_STORAGE_HOST  proxy: the storage container's host name, written into the rings at the first start
                        (default swift-storage)
    SWIFT_WORKERS       workers per server (default 2, as natively)
State, in /srv/swift (a volume): the configuration (0600, written at each start), the rings (proxy, built once),
devices/d1 (storage).
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path("/srv/swift")
TEMPLATES = Path("/usr/local/share/firecrest/swift")
PORTS = {"object": 6200, "container": 6201, "account": 6202, "proxy": 8080}
MEMCACHED_PORT = 11211
PYTHON = "/usr/bin/python3"


def fail(message: str) -> None:
    print(f"swift: {message}", file=sys.stderr, flush=True)
    sys.exit(64)


def secret(name: str) -> str:
    path = Path(os.environ.get(f"{name}_FILE", f"/run/secrets/{name.lower()}"))
    value = path.read_text().strip() if path.is_file() else os.environ.get(name, "").strip()
    if not value:
        fail(f"{name} is missing: mount it at {path} or set {name}")
    if not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", value):
        fail(f"{name} may hold only letters, digits and ._~+/=-")
    return value


def render(template: str, dest: Path, values: dict, text: str | None = None) -> None:
    """Fill the native template's @NAME@ placeholders (all of them, or fail) into dest, 0600."""
    text = (TEMPLATES / template).read_text() if text is None else text
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@([A-Z][A-Z0-9_]*)@", text)
    if left:
        fail(f"{template}: unfilled placeholders {left}")
    dest.unlink(missing_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def check_hash(prefix: str, suffix: str) -> None:
    """The hash places every object: a changed one would lose all data, so refuse it."""
    digest = hashlib.sha256(f"{prefix}\0{suffix}".encode()).hexdigest()
    mark = STATE / "hash.sha256"
    if mark.exists() and mark.read_text().strip() != digest:
        fail(f"the hash prefix/suffix differ from the ones this state was made with ({mark}); never change them")
    mark.write_text(digest + "\n")


def configure(role: str) -> list[list[str]]:
    os.umask(0o077)
    prefix, suffix = secret("SWIFT_HASH_PATH_PREFIX"), secret("SWIFT_HASH_PATH_SUFFIX")
    check_hash(prefix, suffix)
    workers = os.environ.get("SWIFT_WORKERS", "2")
    if not workers.isdigit():
        fail("SWIFT_WORKERS must be a number")
    devices = STATE / "devices"
    # Every interface of the container: its networks decide who reaches it (storage: the proxy's network only).
    values = {"HOST": "0.0.0.0", "SWIFT_DIR": STATE, "DEVICES": devices, "HASH_PREFIX": prefix,  # noqa: S104
              "HASH_SUFFIX": suffix}
    render("swift.conf", STATE / "swift.conf", values)
    (STATE / "launch.py").write_bytes((TEMPLATES / "launch.py").read_bytes())
    launch = [PYTHON, str(STATE / "launch.py"), str(STATE / "swift.conf")]
    if role == "storage":
        (devices / "d1").mkdir(parents=True, exist_ok=True)
        argvs = []
        for kind in ("account", "container", "object"):
            conf = STATE / f"{kind}-server.conf"
            render("server.conf", conf, {**values, "KIND": kind, "PORT": PORTS[kind]})
            set_workers(conf, workers)
            argvs.append([*launch, f"/usr/bin/swift-{kind}-server", str(conf), "-v"])
        return argvs
    account, sep, user = os.environ.get("SWIFT_USER", "firecrest:gateway").partition(":")
    if not (sep and re.fullmatch(r"[A-Za-z0-9-]+", account) and re.fullmatch(r"[A-Za-z0-9-]+", user)):
        fail("SWIFT_USER must be account:user (letters, digits, -)")
    public = os.environ.get("SWIFT_PUBLIC_URL", "http://swift-proxy:8080").rstrip("/")
    storage_host = os.environ.get("SWIFT_STORAGE_HOST", "swift-storage")
    text = (TEMPLATES / "proxy-server.conf").read_text()
    # The two places where the native template's @HOST@ is not the bind address: the storage URL tempauth hands
    # out (the proxy as its clients reach it) and memcached (the container's own loopback).
    for old, new in (("http://@HOST@:@PORT@/v1/", f"{public}/v1/"),
                     ("memcache_servers = @HOST@:@MEMCACHED_PORT@", f"memcache_servers = 127.0.0.1:{MEMCACHED_PORT}")):
        if old not in text:
            fail(f"proxy-server.conf no longer has {old!r}: update {__file__}")
        text = text.replace(old, new)
    conf = STATE / "proxy-server.conf"
    render("proxy-server.conf", conf, {**values, "KIND": "proxy", "PORT": PORTS["proxy"], "ACCOUNT": account,
                                       "USER": user, "KEY": secret("SWIFT_KEY")}, text)
    set_workers(conf, workers)
    # Never rebuilt: a repeated rebalance fails, and a new ring could move existing data.
    missing = [f"{STATE / kind}:{PORTS[kind]}" for kind in ("account", "container", "object")
               if not (STATE / f"{kind}.ring.gz").exists()]
    if missing:
        subprocess.run([PYTHON, str(TEMPLATES / "build_rings.py"), storage_host, *missing], cwd=STATE, check=True)
        print(f"swift: rings built for {storage_host} ({len(missing)})", file=sys.stderr, flush=True)
    memcached = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p", str(MEMCACHED_PORT), "-U", "0", "-m", "64"]
    return [memcached, [*launch, "/usr/bin/swift-proxy-server", str(conf), "-v"]]


def set_workers(conf: Path, workers: str) -> None:
    text, n = re.subn(r"(?m)^workers = \d+$", f"workers = {workers}", conf.read_text())
    if n != 1:
        fail(f"{conf}: no `workers =` line")
    conf.write_text(text)


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SWIFT_ROLE", "")
    if role not in ("proxy", "storage"):
        fail(f"the role (first argument or SWIFT_ROLE) must be proxy or storage (it is {role!r})")
    argvs = configure(role)
    (STATE / "role").write_text(role + "\n")  # for the health check
    procs = [subprocess.Popen(argv, cwd=STATE) for argv in argvs]
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"swift: {role} started ({', '.join(os.path.basename(a[3] if a[0] == PYTHON else a[0]) for a in argvs)})",
          file=sys.stderr, flush=True)
    # Any daemon that stops stops the container (its restart policy brings the whole role back).
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    status = next(p.returncode for p in procs if p.returncode is not None)
    if not stopping:
        print(f"swift: a daemon exited ({status}); stopping the others", file=sys.stderr, flush=True)
        stop(None, None)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    sys.exit(0 if stopping else (status or 1))


if __name__ == "__main__":
    main()
