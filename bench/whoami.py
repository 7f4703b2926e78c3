"""GET /utilities/whoami through the gateway against the floor measured in the same run.

Floor: paramiko exec of the same remote command on an already open connection (no HTTP, no token, no pool).
Usage (site up): .venv/bin/python bench/whoami.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import ENV, RawSSH, measure, report, token, wrk

COMMAND = "timeout -k 2 5 id -un"  # exactly what the utilities service runs (less the request id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each concurrent run")
    parser.add_argument("--url", default=ENV.get("FIRECREST_URL", "") + "/utilities/whoami")
    args = parser.parse_args()

    raw = RawSSH("alice")
    headers = {"Authorization": f"Bearer {token('alice')}", "X-Machine-Name": "cluster"}
    session = requests.Session()

    def gateway_call() -> bool:
        r = session.get(args.url, headers=headers, timeout=30)
        return r.status_code == 200 and r.json()["output"] == "alice"

    def raw_call() -> bool:
        status, out = raw.run(COMMAND)
        return status == 0 and out.strip() == b"alice"

    for _ in range(50):  # warm: the pool's connections, the token keys, the page cache
        gateway_call()
        raw_call()
    floor = measure("floor: raw pooled SSH exec (sequential)", raw_call, 300)
    seq = measure("GET /utilities/whoami (sequential)", gateway_call, 300)
    rows = [(floor, None), (seq, floor)]
    for clients in (16, 64):
        floor_c = measure(f"floor: raw SSH exec, {clients} concurrent channels", raw_call, 50 * clients, clients)
        rows.append((floor_c, None))
        rows.append((wrk(f"GET /utilities/whoami, {clients} clients (wrk)", args.url, headers, clients,
                         args.seconds), floor_c))
    raw.close()
    report("whoami through the gateway vs the raw pooled SSH floor", rows)


if __name__ == "__main__":
    main()
