"""Utilities through the gateway against the raw pooled-SSH floor measured in the same run.

(a) GET /utilities/ls of a small directory (5 entries), sequential and concurrent (wrk): 8 clients of alice, then
    16, 8 of alice and 8 of bob, each listing a directory of their own (see client_levels in common_bench.py);
(b) GET /utilities/ls of a 1,000-entry directory, sequential;
(c) GET /utilities/download of a 1 MiB file, sequential.

Floor: paramiko exec, on already open connections, of exactly the line the service sends (built from the same
command objects: utilities/commands.py's Ls and ReadFile, common/commands.py's line(), the site's timeout, an
`ID=<uuid>` tag as the gateway's request id gives), reading all of its output; no HTTP, token, certificator,
parsing or JSON. The benchmark makes its files under /home/alice and /home/bob itself (directly as root when this
host sees the cluster's homes: /home for the native site, FIRECREST_MOUNT_HOME for the compose site; else through
the API) and removes them at the end.
Usage (site up): .venv/bin/python bench/utilities.py [--seconds 10] [--n 300] [--per-user 8]
The compose site: FIRECREST_STACK_DIR=.compose .venv/bin/python bench/utilities.py (the same options).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import (
    COMPOSE,
    ENV,
    USERS,
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
from utilities.commands import Ls, ReadFile

USER = "alice"  # the sequential runs and the floor's; the concurrent runs add bob
SMALL = ("a.txt", "b.dat", "c.log", "sub", "link")  # 3 files, a directory, a symbolic link
BIG_ENTRIES = 1000
DOWNLOAD_BYTES = 1024 * 1024
DOWNLOAD_FAILURE = "Failed to download file"  # what the service says of a download over the limit (utilities/app.py)


def host_homes() -> Path | None:
    """Where this host sees the cluster's /home: FIRECREST_MOUNT_HOME (the compose site's volume), else /home itself
    on the native site (its login node is this host); None for another site (the tree is then made through the
    API)."""
    if ENV.get("FIRECREST_MOUNT_HOME"):
        return Path(ENV["FIRECREST_MOUNT_HOME"])
    return None if COMPOSE else Path("/home")


class Fixture:
    """The test tree under the user's home: small/ (5 entries), big/ (1,000 files), blob (1 MiB of random bytes)."""

    def __init__(self, gateway: str, via_api: bool, user: str) -> None:
        self.gateway, self.user = gateway, user
        self.base = f"/home/{user}/.bench-utilities-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.small, self.big, self.blob = f"{self.base}/small", f"{self.base}/big", f"{self.base}/blob"
        self.data = os.urandom(DOWNLOAD_BYTES)
        self.created = False
        home = host_homes()
        self.host_base = home / user / Path(self.base).name if home else None  # the same tree, as this host sees it
        self.local = not via_api and os.geteuid() == 0 and self.host_base is not None and self.host_base.parent.is_dir()

    def _api(self, method: str, route: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token(self.user)}", "X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
        r = requests.request(method, f"{self.gateway}/utilities/{route}", headers=headers, timeout=60, **kwargs)
        if r.status_code >= 300:
            raise SystemExit(f"{method} /utilities/{route}: {r.status_code} {r.text}")
        return r

    def create(self) -> None:
        self.created = True  # remove() then removes whatever part of the tree there is
        if self.local:
            self._create_locally()
        else:
            self._create_via_api()

    def _create_locally(self) -> None:
        """As root, on the cluster's home filesystem as this host sees it, owned as the user's home is (the
        cluster's uid and gid, which need not be this host's)."""
        assert self.host_base is not None
        base = self.host_base
        home = base.parent.stat()
        own = lambda p: os.chown(p, home.st_uid, home.st_gid, follow_symlinks=False)  # noqa: E731
        for directory in (base, base / "small", base / "big"):
            os.mkdir(directory, 0o755)
        for name in SMALL[:3]:
            (base / "small" / name).write_text(f"{name}\n")
        os.mkdir(base / "small" / "sub", 0o755)
        os.symlink("a.txt", base / "small" / "link")
        for i in range(BIG_ENTRIES):
            (base / "big" / f"file-{i:04d}").write_text(f"{i}\n")
        (base / "blob").write_bytes(self.data)
        own(base)
        for root, dirs, files in os.walk(base):
            for name in dirs + files:
                own(os.path.join(root, name))

    def _create_via_api(self) -> None:
        """mkdir, upload one tar.gz of the tree, extract it, remove the archive (4 calls)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            def add(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data) if data else None)
            add("small", kind=tarfile.DIRTYPE)
            for name in SMALL[:3]:
                add(f"small/{name}", f"{name}\n".encode())
            add("small/sub", kind=tarfile.DIRTYPE)
            add("small/link", kind=tarfile.SYMTYPE, link="a.txt")
            add("big", kind=tarfile.DIRTYPE)
            for i in range(BIG_ENTRIES):
                add(f"big/file-{i:04d}", f"{i}\n".encode())
            add("blob", self.data)
        self._api("POST", "mkdir", data={"targetPath": self.base})
        self._api("POST", "upload", data={"targetPath": self.base}, files={"file": ("tree.tar.gz", buf.getvalue())})
        self._api("POST", "extract", data={"sourcePath": f"{self.base}/tree.tar.gz", "targetPath": self.base})
        self._api("DELETE", "rm", data={"targetPath": f"{self.base}/tree.tar.gz"})

    def remove(self) -> None:
        if not self.created:
            return
        if self.local and self.host_base:
            shutil.rmtree(self.host_base, ignore_errors=True)
        else:
            self._api("DELETE", "rm", data={"targetPath": self.base})


class Calls:
    """The gateway call and its floor for each case, sharing one session and one pooled SSH connection."""

    def __init__(self, gateway: str, raw: RawSSH, limit: int) -> None:
        self.gateway, self.url, self.raw, self.limit = gateway, f"{gateway}/utilities", raw, limit
        self.session = requests.Session()
        self.hdr: dict[str, str] = {}

    def renew(self) -> dict[str, str]:  # a fresh token per phase: they live 5 minutes
        self.hdr = {"Authorization": f"Bearer {token(USER)}", "X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
        return self.hdr

    def ls(self, path: str, entries: int) -> tuple[Callable[[], bool], Callable[[], bool]]:
        def gateway_call() -> bool:
            r = self.session.get(f"{self.url}/ls", params={"targetPath": path}, headers=self.hdr, timeout=30)
            return r.status_code == 200 and len(r.json()["output"]) == entries

        def raw_call() -> bool:
            status, out = self.raw.run(service_line(Ls(path), str(uuid.uuid4())))
            return status == 0 and out.count(b"\n") == entries + 1  # the `total N` line, then one per entry
        return gateway_call, raw_call

    def download(self, path: str, data: bytes) -> tuple[Callable[[], bool], Callable[[], bool]]:
        def gateway_call() -> bool:
            r = self.session.get(f"{self.url}/download", params={"sourcePath": path}, headers=self.hdr, timeout=30)
            return r.status_code == 200 and r.content == data

        def raw_call() -> bool:
            line = service_line(ReadFile("download", path, self.limit, DOWNLOAD_FAILURE), str(uuid.uuid4()))
            status, out = self.raw.run(line)
            return status == 0 and out == data
        return gateway_call, raw_call


Sections = list[tuple[str, list[tuple[Figures, Figures | None]]]]


def run_cases(calls: Calls, fixture: Fixture, n: int) -> Sections:
    """Each case sequentially against its floor."""
    cases = [
        (f"ls, {len(SMALL)} entries", "GET /utilities/ls", calls.ls(fixture.small, len(SMALL))),
        (f"ls, {BIG_ENTRIES:,} entries", "GET /utilities/ls", calls.ls(fixture.big, BIG_ENTRIES)),
        (f"download, {DOWNLOAD_BYTES // 1024} KiB", "GET /utilities/download",
         calls.download(fixture.blob, fixture.data)),
    ]
    sections: Sections = []
    for label, route, (gateway_call, raw_call) in cases:
        calls.renew()
        for _ in range(30):  # warm: the pool's connections, the token keys, the page cache
            if not gateway_call() or not raw_call():
                raise SystemExit(f"{label}: the warm-up call failed")
        floor = measure("floor: raw pooled SSH exec (sequential)", raw_call, n)
        seq = measure(f"{route} (sequential)", gateway_call, n)
        sections.append((label, [(floor, None), (seq, floor)]))
    return sections


def run_concurrent(calls: Calls, fixtures: dict[str, Fixture], seconds: int, per_user: int,
                   notes: list[str]) -> list[tuple[Figures, Figures | None]]:
    """(a) at each of client_levels: the floor (alice's ls) on as many channels, then the gateway with wrk, one
    thread per user, each user listing their own small directory."""
    rows: list[tuple[Figures, Figures | None]] = []
    for clients, users in client_levels(per_user):
        floor = measure(f"floor: raw SSH exec, {clients} concurrent channels",
                        calls.ls(fixtures[USER].small, len(SMALL))[1], 50 * clients, clients)
        loads = [Load(f"/utilities/ls?targetPath={quote(fixtures[u].small, safe='/')}",
                      {"Authorization": f"Bearer {token(u)}"}) for u in users]
        system = {"X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
        for load in loads:  # warm: each user's pooled connections in the service
            for _ in range(10):
                calls.session.get(calls.gateway + load.path, headers={**load.headers, **system}, timeout=30)
        loads = loads * 2 if len(loads) == 1 else loads  # two wrk threads, as with two users
        who = " + ".join(f"{clients // len(users)} {u}" for u in users)
        statuses: dict[str, int] = {}
        fig = wrk(f"GET /utilities/ls, {clients} clients ({who})", calls.url,
                  system, clients, seconds, statuses, loads)
        rows += [(floor, None), (fig, floor)]
        notes.append(f"{fig.name}: {describe_statuses(statuses)}")
    return rows


def print_report(fixture: Fixture, limit: int, sections: Sections) -> None:
    print(f"test tree: {fixture.base} ({'made as root' if fixture.local else 'made through the API'}, removed); "
          f"floor lines as the service sends them (a fresh uuid per call), e.g.\n"
          f"  {service_line(Ls(fixture.small), str(uuid.uuid4()))}\n"
          f"  {service_line(ReadFile('download', fixture.blob, limit, DOWNLOAD_FAILURE), str(uuid.uuid4()))}")
    for label, rows in sections:
        report(f"{label}: through the gateway vs the raw pooled SSH floor", rows)
        for fig, of_floor in rows:
            if of_floor:
                print(f"    {fig.name}: {fig.rps / of_floor.rps:.2f} of the floor's req/s")
    dl = sections[2][1]
    print(f"\n  download throughput: floor {dl[0][0].rps * DOWNLOAD_BYTES / 1e6:.1f} MB/s, "
          f"gateway {dl[1][0].rps * DOWNLOAD_BYTES / 1e6:.1f} MB/s (sequential)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each concurrent run")
    parser.add_argument("--n", type=int, default=300, help="requests per sequential measurement")
    parser.add_argument("--gateway", default=need("FIRECREST_URL", "the gateway"))
    parser.add_argument("--via-api", action="store_true", help="make the test files through the API, not as root")
    parser.add_argument("--per-user", type=int, default=site().limits.sync_commands_per_user or 16,
                        help="concurrent clients per user (default: the site's per-process bound)")
    args = parser.parse_args()

    print(f"site: {site_label()}\nconcurrent clients: at most {args.per_user} per user (see client_levels)")
    limit = site().limits.max_file_size_mb * 1024 * 1024
    fixtures = {u: Fixture(args.gateway, args.via_api, u) for u in USERS}
    raw: RawSSH | None = None
    notes: list[str] = []
    try:
        for fixture in fixtures.values():
            fixture.create()
        raw = RawSSH(USER)
        calls = Calls(args.gateway, raw, limit)
        sections = run_cases(calls, fixtures[USER], args.n)
        sections[0][1].extend(run_concurrent(calls, fixtures, args.seconds, args.per_user, notes))
    finally:
        if raw:
            raw.close()
        for fixture in fixtures.values():
            fixture.remove()
    print_report(fixtures[USER], limit, sections)
    for note in notes:
        print(f"  {note}")


if __name__ == "__main__":
    main()
