"""Healthy when the role's servers answer: the proxy's GET /healthcheck is 200; each storage server answers HTTP
(any status: they have no health check route of their own). The role is the one the entrypoint recorded."""

import http.client
import sys
from pathlib import Path


def status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


try:
    role = Path("/srv/swift/role").read_text().strip()
    if role == "proxy":
        code = status(8080, "/healthcheck")
        print(f"proxy /healthcheck: {code}")
        sys.exit(0 if code == 200 else 1)
    for kind, port in (("account", 6202), ("container", 6201), ("object", 6200)):
        print(f"{kind} server: {status(port, '/')}")
except OSError as e:
    print(f"swift: {e}")
    sys.exit(1)
