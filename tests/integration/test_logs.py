"""The site's logs: the gateway writes a request's method, path and id, never a token or a query string, no log
holds them, and no cluster user can read any log."""

from __future__ import annotations

import subprocess
import time
import uuid

import requests


def test_tokens_and_query_strings_never_reach_the_log(site):
    """A token in `?jwt=` (refused, but logged by a naive gateway), a temp-URL-like signature in a query and the
    Authorization header: the log has the request (its path and request id) and none of them."""
    gateway, alice = site.env["FIRECREST_URL"], site.token("alice")
    bearer = {"Authorization": f"Bearer {alice}"}
    secret = f"secret-{uuid.uuid4().hex}"
    rids = []
    for path, headers in [(f"/utilities/whoami?jwt={secret}", {}),
                          (f"/status/parameters?temp_url_sig={secret}&temp_url_expires=1", bearer),
                          (f"/nope?access_token={secret}", bearer)]:
        rid = f"log-{uuid.uuid4().hex[:12]}"
        rids.append(rid)
        requests.get(gateway + path, headers={**headers, "X-Request-ID": rid, "X-Machine-Name": "cluster"},
                     timeout=30)
    log = site.dir / "log" / "haproxy.log"
    deadline = time.monotonic() + 10
    while not all(f"rid={rid} " in log.read_text() for rid in rids) and time.monotonic() < deadline:
        time.sleep(0.1)
    text = log.read_text()
    mine = [line for line in text.splitlines() if any(f"rid={rid} " in line for rid in rids)]
    assert len(mine) == 3, mine
    assert ' "/utilities/whoami" ' in mine[0]
    assert secret not in text and alice not in text and alice.split(".")[2] not in text
    for path in (site.dir / "log").iterdir():  # the services' own logs neither
        assert secret not in path.read_text(errors="replace"), path


def test_no_log_is_readable_by_a_cluster_user(site):
    logs = [p for p in site.dir.rglob("*") if p.is_file() and (p.suffix == ".log" or p.parent.name == "log")]
    assert len(logs) >= 10
    for user in ("alice", "bob"):
        result = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env",
                                 "/usr/bin/python3", "-c", READ_EACH, *map(str, logs)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "", f"{user} can read: {result.stdout}"


READ_EACH = """
import sys
for path in sys.argv[1:]:
    try:
        open(path, "rb").close()
        print(path)
    except OSError:
        pass
"""
