"""The gateway's Flask services under gunicorn: the certificator (as `firecrest-ca`, the one account that reads the
CA key) and the public services (as the unprivileged `firecrest` user, which cannot read the CA key)."""

from __future__ import annotations

import functools
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..component import Component
from ..core import HOST, Daemon, mkdir, system_user
from . import PORTS, swift
from .keycloak import REALM
from .keycloak import URL as KEYCLOAK_URL
from .login import CA_ACCOUNT

SERVICE_USER = "firecrest"
# gunicorn's --limit-request-line (default 4094) would refuse a query string holding a path near PATH_MAX.


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    workers: int
    threads: int
    user: str  # every service runs as an unprivileged account
    probe: str = "/status"  # answers (401 without a token, 200 if public) once the app is loaded


SERVICES = (
    Service("certificator", "certificator.app:create()", workers=1, threads=8, user=CA_ACCOUNT),  # the CA key's reader
    Service("status", "status.app:create()", workers=1, threads=8, user=SERVICE_USER),
    Service("utilities", "utilities.app:create()", workers=2, threads=16, user=SERVICE_USER),
    # Event streams (tasks/events_routes.py) hold a thread each while they wait in Redis, at most 16 per process:
    # 16 more threads keep serving ordinary requests as before.
    Service("tasks", "tasks.app:create()", workers=2, threads=32, user=SERVICE_USER),
    Service("compute", "compute.app:create()", workers=2, threads=16, user=SERVICE_USER),
    Service("storage", "storage.app:create()", workers=2, threads=16, user=SERVICE_USER),
    # Static pages and the OpenAPI file, public: no token, no secret of the site.
    Service("apidocs", "apidocs.app:create()", workers=1, threads=8, user=SERVICE_USER, probe="/openapi.yaml"),
)


def internal_url(name: str) -> str:
    return f"http://{HOST}:{PORTS[name]}"


class Services(Component):
    name = "services"

    def ports(self) -> list[int]:
        return [PORTS[s.name] for s in SERVICES]

    def prepare(self) -> None:
        system_user(SERVICE_USER)
        mkdir(self.dir, 0o711)
        for s in SERVICES:  # each service's metric values (common/serving.py empties it at start)
            mkdir(self._metrics_dir(s), 0o700, owner=s.user)

    def _metrics_dir(self, service: Service) -> Path:
        return self.dir / f"metrics-{service.name}"

    def _env(self, service: Service) -> dict[str, str]:
        env = {
            "FIRECREST_SITE_FILE": str(self.stack.repo / "deploy" / "local" / "site.yaml"),
            "FIRECREST_STACK_DIR": str(self.stack.dir),
            "KEYCLOAK_URL": KEYCLOAK_URL,
            "KEYCLOAK_REALM": REALM,
            **{f"FIRECREST_INTERNAL_{s.name.upper()}_URL": internal_url(s.name) for s in SERVICES},
            "PYTHONDONTWRITEBYTECODE": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir(service)),
            # glibc gives each new thread its own malloc arena (up to 8 per core), and each arena keeps the pages
            # its frees leave in pieces: in the first soak the utilities workers' RSS grew 0.3 MiB a minute, all of
            # it in the arenas of their request threads. Two arenas suffice: Python allocates under the GIL.
            "MALLOC_ARENA_MAX": "2",
        }
        if service.name == "apidocs":  # the gateway's URL as browsers reach it: the spec's `servers`
            env["FIRECREST_URL"] = f"http://{HOST}:{PORTS['gateway']}"
        else:  # the documentation holds no secret of the site
            env["FIRECREST_SERVICE_TOKEN"] = self.stack.secret("service-token")
        if service.name == "storage":  # the only service that holds the object store's credentials
            env["SWIFT_USER"] = f"{swift.ACCOUNT}:{swift.USER}"
            env["SWIFT_KEY"] = self.stack.secret("swift-key")
        if service.name == "tasks":  # the only service that talks to Redis
            env["FIRECREST_REDIS_PASSWORD"] = self.stack.secret("redis")
        return env

    def daemons(self) -> list[Daemon]:
        gunicorn = str(self.stack.repo / ".venv" / "bin" / "gunicorn")
        return [
            Daemon(
                s.name,
                [gunicorn, "--bind", f"{HOST}:{PORTS[s.name]}", "--workers", str(s.workers), "--threads",
                 str(s.threads), "--worker-class", "gthread", "--chdir", str(self.stack.repo),
                 "--graceful-timeout", "10", "--limit-request-line", "32768", "--keep-alive", "30",
                 "--error-logfile", "-", "--config", "python:common.serving", s.module],
                self.stack.run / f"{s.name}.pid",
                ready=functools.partial(self._answers, s),
                user=s.user,
                env=self._env(s),
                timeout=30,
            )
            for s in SERVICES
        ]

    @staticmethod
    def _answers(service: Service) -> bool:
        """The app is loaded once its probe answers (/status: 401 without a token)."""
        try:
            with urllib.request.urlopen(f"{internal_url(service.name)}{service.probe}", timeout=2):  # noqa: S310
                return True
        except urllib.error.HTTPError as e:
            return e.code in (401, 403)
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        return {f"FIRECREST_INTERNAL_{s.name.upper()}_URL": internal_url(s.name) for s in SERVICES}

    def describe(self) -> list[str]:
        return [", ".join(f"{s.name} {internal_url(s.name)}" for s in SERVICES) + " (gunicorn; internal only)"]
