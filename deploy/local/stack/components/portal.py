"""The web portal (portal/) under gunicorn, as its own unprivileged account, talking to the site only through the
gateway and Keycloak, like any user's program.

Its sessions (the users' tokens) live in its state directory, which only its account reads. Its port is public like
the gateway's (firewall.py leaves it open): a user's browser, or a user's batch job, is a client like any other,
and every page asks for a Keycloak sign-in.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from ..component import Component
from ..core import HOST, Daemon, mkdir, system_user
from . import PORTS
from .keycloak import REALM
from .keycloak import URL as KEYCLOAK_URL

ACCOUNT = "firecrest-portal"
CLIENT_ID = "firecrest-portal"
URL = f"http://{HOST}:{PORTS['portal']}"


class Portal(Component):
    name = "portal"

    def ports(self) -> list[int]:
        return [PORTS["portal"]]

    def prepare(self) -> None:
        system_user(ACCOUNT)
        mkdir(self.dir, 0o700, owner=ACCOUNT)
        mkdir(self.dir / "sessions", 0o700, owner=ACCOUNT)

    def daemons(self) -> list[Daemon]:
        gunicorn = str(self.stack.repo / ".venv" / "bin" / "gunicorn")
        # Threads, not processes, carry the relayed event streams (each holds one while it is open).
        return [Daemon(
            "portal",
            [gunicorn, "--bind", f"{HOST}:{PORTS['portal']}", "--workers", "2", "--threads", "32",
             "--worker-class", "gthread", "--chdir", str(self.stack.repo), "--graceful-timeout", "10",
             "--keep-alive", "30", "--no-control-socket", "--error-logfile", "-", "portal.app:create()"],
            self.stack.run / "portal.pid",
            ready=self._answers,
            user=ACCOUNT,
            env={
                "FIRECREST_URL": f"http://{HOST}:{PORTS['gateway']}",
                "KEYCLOAK_URL": KEYCLOAK_URL,
                "KEYCLOAK_REALM": REALM,
                "FIRECREST_PORTAL_CLIENT_ID": CLIENT_ID,
                "FIRECREST_PORTAL_URL": URL,
                "FIRECREST_PORTAL_SECRET_KEY": self.stack.secret("portal-secret-key"),
                "FIRECREST_PORTAL_STATE_DIR": str(self.dir),
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            timeout=30,
        )]

    @staticmethod
    def _answers() -> bool:
        """Loaded once a page answers (a redirect to the sign-in, not followed)."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        try:
            with urllib.request.build_opener(NoRedirect).open(f"{URL}/systems", timeout=2):
                return True
        except urllib.error.HTTPError as e:
            return e.code == 302
        except OSError:
            return False

    def env(self) -> dict[str, str]:
        return {"FIRECREST_PORTAL_URL": URL}

    def describe(self) -> list[str]:
        return [f"web portal {URL} (gunicorn as {ACCOUNT}; sign in as alice or bob; sessions in {self.dir})"]
