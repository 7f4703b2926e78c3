"""The services image's health check: the service is alive once GET /status answers; without a token that is
401 (or 403), as the native site's readiness check (deploy/local/stack/components/services.py) counts it."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

URL = "http://127.0.0.1:8000/status"


def alive() -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(URL, timeout=2):
            return True
    except urllib.error.HTTPError as e:
        return e.code in (401, 403)
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if alive() else 1)
