"""GET /utilities/whoami through the gateway against the floor measured in the same run, on the same site.

Floor: paramiko exec of exactly the line the service sends (common/commands.py's Whoami under the site's remote
timeout, with an `ID=<uuid>` tag as the gateway's request id gives) on already open connections to the same site's
login node (no HTTP, no token, no pool).
Concurrent runs: 8 clients of alice, then 16 (8 of alice, 8 of bob); see client_levels in common_bench.py.
Usage (site up): .venv/bin/python bench/whoami.py [--seconds 10] [--n 300] [--per-user 8]
The compose site: FIRECREST_STACK_DIR=.compose .venv/bin/python bench/whoami.py (the same options).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import (
    ENV,
    Figures,
    Load,
    RawSSH,
    client_levels,
    describe_statuses,
    measure,
    need,
    report,
    service_line,
    site,
    site_label,
    token,
    wrk,
)
from common.commands import Whoami

ROUTE = "/utilities/whoami"
USER = "alice"
Rows = list[tuple[Figures, Figures | None]]


def concurrent_rows(gateway: str, raw_call: Callable[[], bool], seconds: int,
                    per_user: int) -> tuple[Rows, list[str]]:
    """At each level: the floor on as many channels, then the gateway with wrk (a thread per user)."""
    rows: Rows = []
    notes: list[str] = []
    system = {"X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
    for clients, users in client_levels(per_user):
        floor = measure(f"floor: raw SSH exec, {clients} concurrent channels", raw_call, 50 * clients, clients)
        loads = [Load(ROUTE, {"Authorization": f"Bearer {token(u)}"}) for u in users]
        loads = loads * 2 if len(loads) == 1 else loads  # two wrk threads, as with two users
        who = " + ".join(f"{clients // len(users)} {u}" for u in users)
        statuses: dict[str, int] = {}
        fig = wrk(f"GET {ROUTE}, {clients} clients ({who})", gateway + ROUTE, system, clients, seconds,
                  statuses, loads)
        rows += [(floor, None), (fig, floor)]
        notes.append(f"{fig.name}: {describe_statuses(statuses)}")
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each concurrent run")
    parser.add_argument("--n", type=int, default=300, help="requests per sequential measurement")
    parser.add_argument("--gateway", default=need("FIRECREST_URL", "the gateway"))
    parser.add_argument("--per-user", type=int, default=site().limits.sync_commands_per_user or 16,
                        help="concurrent clients per user (default: the site's per-process bound)")
    args = parser.parse_args()

    print(f"site: {site_label()}\nconcurrent clients: at most {args.per_user} per user (see client_levels)")
    raw = RawSSH(USER)
    headers = {"Authorization": f"Bearer {token(USER)}", "X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
    session = requests.Session()

    def gateway_call() -> bool:
        r = session.get(args.gateway + ROUTE, headers=headers, timeout=30)
        return r.status_code == 200 and r.json()["output"] == USER

    def raw_call() -> bool:
        status, out = raw.run(service_line(Whoami(), str(uuid.uuid4())))
        return status == 0 and out.strip() == USER.encode()

    try:
        for _ in range(50):  # warm: the pool's connections, the token keys, the page cache
            if not gateway_call() or not raw_call():
                raise SystemExit("the warm-up call failed")
        floor = measure("floor: raw pooled SSH exec (sequential)", raw_call, args.n)
        seq = measure(f"GET {ROUTE} (sequential)", gateway_call, args.n)
        rows, notes = concurrent_rows(args.gateway, raw_call, args.seconds, args.per_user)
    finally:
        raw.close()
    print(f"floor line as the service sends it (a fresh uuid per call): {service_line(Whoami(), str(uuid.uuid4()))}")
    report("whoami through the gateway vs the raw pooled SSH floor", [(floor, None), (seq, floor), *rows])
    for note in notes:
        print(f"  {note}")


if __name__ == "__main__":
    main()
