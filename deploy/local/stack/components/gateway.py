"""The gateway: HAProxy rendered from kong/kong.yml, validating the realm's tokens before anything reaches a service.

The realm's signing keys come from Keycloak's JWKS (Keycloak starts in the background, so this waits for it); a
changed configuration (new keys, an edited kong.yml, a service added) restarts HAProxy on the next `up`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from ..component import Component
from ..core import HOST, Daemon, SiteError, Stack, mkdir, port_open, run, running, stop, write
from . import PORTS
from .keycloak import REALM
from .keycloak import URL as KEYCLOAK_URL

ISSUER = f"{KEYCLOAK_URL}/realms/{REALM}"
JWKS_URL = f"{ISSUER}/protocol/openid-connect/certs"
AUDIENCE = "firecrest"
JWKS_WAIT = 180.0  # Keycloak's first start takes 20-40 s
# The services of kong.yml; those with a port in PORTS are forwarded to, the others answer 503 (not deployed).
KONG_SERVICES = ("status", "utilities", "compute", "storage", "tasks", "apidocs")


def fetch_jwks(timeout: float, log: Path) -> dict:
    """The realm's JWKS once Keycloak (started in a background thread) answers with an RSA signing key."""
    deadline = time.monotonic() + timeout
    error = "no answer"
    while True:
        try:
            with urllib.request.urlopen(JWKS_URL, timeout=5) as r:  # noqa: S310 (a fixed http:// URL)
                jwks = json.load(r)
            if any(k.get("use", "sig") == "sig" and k.get("kty") == "RSA" for k in jwks.get("keys", [])):
                return jwks
            error = "no RSA signing key in the JWKS"
        except (OSError, ValueError) as e:  # URLError, HTTPError and connection errors are OSErrors
            error = str(e)
        if time.monotonic() >= deadline:
            raise SiteError(f"gateway: the realm's keys never came from {JWKS_URL} within {timeout:.0f} s ({error}); "
                            f"is keycloak up? see {log}")
        time.sleep(1)


class Gateway(Component):
    name = "gateway"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.config = self.dir / "haproxy.cfg"
        self.daemon = Daemon(
            name="haproxy",
            argv=["haproxy", "-db", "-f", str(self.config)],  # -db: foreground, `log stdout` goes to the log file
            pidfile=stack.run / "gateway.pid",
            ready=lambda: port_open(PORTS["gateway"]),
            user="haproxy",
        )

    def ports(self) -> list[int]:
        return [PORTS["gateway"]]

    def prepare(self) -> None:
        mkdir(self.dir, 0o750, group="haproxy")
        jwks = json.dumps(fetch_jwks(JWKS_WAIT, self.stack.log / "keycloak.log"), indent=1) + "\n"
        before = [f.read_text() if f.exists() else None for f in (self.config, self.dir / "jwks.json")]
        write(self.dir / "jwks.json", jwks)
        new = self.dir / "haproxy.cfg.new"
        run([
            str(self.stack.repo / ".venv" / "bin" / "python"), str(self.stack.repo / "kong" / "render.py"),
            "--config", str(self.stack.repo / "kong" / "kong.yml"),
            "--out", str(new),
            "--bind", HOST,
            "--port", str(PORTS["gateway"]),
            "--issuer", ISSUER,
            "--audience", AUDIENCE,
            "--jwks", str(self.dir / "jwks.json"),
            "--key-dir", str(self.dir / "keys"),
            "--site", str(self.stack.repo / "deploy" / "local" / "site.yaml"),  # registered applications, scopes
            *(f"--upstream={name}=http://{HOST}:{PORTS[name]}" for name in KONG_SERVICES if name in PORTS),
        ], env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # no FIRECREST_INTERNAL_* from the caller's shell
        run(["haproxy", "-c", "-q", "-f", str(new)])
        new.replace(self.config)
        if before != [self.config.read_text(), jwks] and running(self.daemon):
            stop(self.daemon)  # new keys or routes: started again with them right after prepare()

    def daemons(self) -> list[Daemon]:
        return [self.daemon]

    def env(self) -> dict[str, str]:
        return {"FIRECREST_URL": f"http://{HOST}:{PORTS['gateway']}", "FIRECREST_SYSTEM": "cluster"}

    def describe(self) -> list[str]:
        return [f"haproxy http://{HOST}:{PORTS['gateway']} (routes from kong/kong.yml; RS256 tokens of {ISSUER}, "
                f"aud {AUDIENCE}; config {self.config})"]
