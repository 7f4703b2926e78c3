"""OpenStack Swift on one node: memcached, account/container/object servers and a proxy (tempauth, tempurl, SLO)."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

from ..component import Component
from ..core import HOST, Daemon, SiteError, mkdir, port_open, render, run, write
from . import PORTS

TEMPLATES = Path(__file__).resolve().parents[2] / "swift"
SERVERS = ("account", "container", "object")
ACCOUNT, USER = "firecrest", "gateway"
PYTHON = "/usr/bin/python3"  # Debian's python3-swift imports only here


def allow_portal(conf: Path) -> None:
    """CORS for the portal's origin only: its pages PUT a large file straight to an upload's temp URL with an
    XMLHttpRequest, whose upload progress listener makes the browser send a preflight OPTIONS first. Swift's
    default strict_cors_mode stays on, so no other origin gets an Access-Control-Allow-Origin. Set here, not in
    the template that the Swift image shares: the portal runs only in the native site."""
    origin = f"http://{HOST}:{PORTS['portal']}"
    text = conf.read_text()
    section = "[app:proxy-server]\n"
    if section not in text:
        raise SiteError(f"{conf}: no {section.strip()} section to add the portal's CORS origin to")
    write(conf, text.replace(section, f"{section}cors_allow_origin = {origin}\nstrict_cors_mode = true\n"),
          mode=0o600, owner="swift")


class Swift(Component):
    name = "swift"

    @property
    def proxy_url(self) -> str:
        return f"http://{HOST}:{PORTS['swift-proxy']}"

    def ports(self) -> list[int]:
        return [PORTS[p] for p in ("memcached", "swift-object", "swift-container", "swift-account", "swift-proxy")]

    def prepare(self) -> None:
        d = mkdir(self.dir, 0o750, group="swift")  # rings and configuration: Swift's alone
        devices = mkdir(d / "devices", owner="swift")
        mkdir(devices / "d1", 0o750, owner="swift")
        # A copy in the stack dir: the swift user may not be able to reach the repo.
        write(d / "launch.py", (TEMPLATES / "launch.py").read_text())
        values: dict[str, object] = {
            "HOST": HOST,
            "SWIFT_DIR": d,
            "DEVICES": devices,
            "HASH_PREFIX": self.stack.secret("swift-hash-prefix"),
            "HASH_SUFFIX": self.stack.secret("swift-hash-suffix"),
            "ACCOUNT": ACCOUNT,
            "USER": USER,
            "KEY": self.stack.secret("swift-key"),
            "MEMCACHED_PORT": PORTS["memcached"],
        }
        render(TEMPLATES / "swift.conf", d / "swift.conf", values, mode=0o600, owner="swift")
        for kind in (*SERVERS, "proxy"):
            template = TEMPLATES / ("proxy-server.conf" if kind == "proxy" else "server.conf")
            conf = {**values, "KIND": kind, "PORT": PORTS[f"swift-{kind}"]}
            render(template, d / f"{kind}-server.conf", conf, mode=0o600, owner="swift")
        allow_portal(d / "proxy-server.conf")
        # Never rebuild: a repeated rebalance fails, and a new ring could move existing data.
        missing = [f"{d / kind}:{PORTS[f'swift-{kind}']}" for kind in SERVERS if not (d / f"{kind}.ring.gz").exists()]
        if missing:
            run([PYTHON, str(TEMPLATES / "build_rings.py"), HOST, *missing], cwd=d)

    def daemons(self) -> list[Daemon]:
        d = self.dir

        def server(kind: str) -> Daemon:
            port = PORTS[f"swift-{kind}"]
            argv = [PYTHON, str(d / "launch.py"), str(d / "swift.conf"), f"/usr/bin/swift-{kind}-server"]
            return Daemon(
                f"swift-{kind}",
                [*argv, str(d / f"{kind}-server.conf"), "-v"],  # -v logs to stderr: there is no syslog
                self.stack.run / f"swift-{kind}.pid",
                ready=self._healthy if kind == "proxy" else lambda: port_open(port),
                user="swift",
                cwd=d,
            )

        memcached = Daemon(
            "memcached",
            ["/usr/bin/memcached", "-l", HOST, "-p", str(PORTS["memcached"]), "-U", "0", "-m", "64"],
            self.stack.run / "memcached.pid",
            ready=lambda: port_open(PORTS["memcached"]),
            user="memcache",
        )
        return [memcached, *(server(k) for k in (*SERVERS, "proxy"))]

    def _healthy(self) -> bool:
        conn = http.client.HTTPConnection(HOST, PORTS["swift-proxy"], timeout=2)
        try:
            conn.request("GET", "/healthcheck")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def configure(self) -> None:
        from swiftclient.client import ClientException, Connection  # imported here: only `up` needs it

        env = self.env()
        deadline = time.monotonic() + 30
        while True:
            conn = Connection(authurl=env["SWIFT_AUTH_URL"], user=env["SWIFT_USER"], key=env["SWIFT_KEY"])
            try:
                # No account-wide temp URL key: it would sign a URL for any object. Each transfer's container has
                # keys of its own (storage/swift.py), removed when the transfer ends. An older site set one: drop it.
                if conn.head_account().get("x-account-meta-temp-url-key"):
                    conn.post_account({"X-Remove-Account-Meta-Temp-URL-Key": "x"})
                return
            except ClientException as e:
                # memcached just (re)started: the proxy may not use it yet (its error suppression, 2 s), so the
                # token it issued is unknown to it a moment later (401). Ask again with a new token.
                if e.http_status != 401 or time.monotonic() > deadline:
                    raise
                time.sleep(1)
            finally:
                conn.close()

    def env(self) -> dict[str, str]:
        return {
            "SWIFT_AUTH_URL": f"{self.proxy_url}/auth/v1.0",
            "SWIFT_USER": f"{ACCOUNT}:{USER}",
            "SWIFT_KEY": self.stack.secret("swift-key"),
        }

    def describe(self) -> list[str]:
        p = PORTS
        return [
            f"proxy {self.proxy_url} (tempauth, tempurl, formpost, slo), account/container/object on "
            f"{p['swift-account']}/{p['swift-container']}/{p['swift-object']}, memcached {p['memcached']}; CORS for "
            f"the portal's origin (http://{HOST}:{p['portal']}) only"
        ]
