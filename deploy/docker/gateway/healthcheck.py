"""Healthy when HAProxy answers GET /status without a token with its own 401 (the JWT check answers before any
service is asked)."""

import http.client
import sys

conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=2)
try:
    conn.request("GET", "/status")
    status = conn.getresponse().status
except OSError as e:
    print(f"gateway: {e}")
    sys.exit(1)
print(f"GET /status without a token: {status}")
sys.exit(0 if status == 401 else 1)
