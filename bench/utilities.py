"""Utilities through the gateway against the raw pooled-SSH floor measured in the same run.

(a) GET /utilities/ls of a small directory (5 entries), sequential and at 64 concurrent clients (wrk);
(b) GET /utilities/ls of a 1,000-entry directory, sequential;
(c) GET /utilities/download of a 1 MiB file, sequential.

Floor: paramiko exec, on already open connections, of exactly the line the service sends (built from the same
command objects: utilities/commands.py's Ls and ReadFile, common/commands.py's line(), the site's timeout, an
`ID=<uuid>` tag as the gateway's request id gives), reading all of its output; no HTTP, token, certificator,
parsing or JSON. The benchmark makes its files under /home/alice itself (directly as root when it can, else
through the API) and removes them at the end.
Usage (site up): .venv/bin/python bench/utilities.py [--seconds 10] [--n 300]
"""

from __future__ import annotations

import argparse
import io
import os
import pwd
import shutil
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import ENV, Figures, RawSSH, measure, report, service_line, site, token, wrk
from utilities.commands import Ls, ReadFile

USER = "alice"
HOME = f"/home/{USER}"
SMALL = ("a.txt", "b.dat", "c.log", "sub", "link")  # 3 files, a directory, a symbolic link
BIG_ENTRIES = 1000
DOWNLOAD_BYTES = 1024 * 1024
DOWNLOAD_FAILURE = "Failed to download file"  # what the service says of a download over the limit (utilities/app.py)
CONCURRENT = 64


class Fixture:
    """The test tree under the user's home: small/ (5 entries), big/ (1,000 files), blob (1 MiB of random bytes)."""

    def __init__(self, gateway: str, via_api: bool) -> None:
        self.gateway = gateway
        self.base = f"{HOME}/.bench-utilities-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.small, self.big, self.blob = f"{self.base}/small", f"{self.base}/big", f"{self.base}/blob"
        self.data = os.urandom(DOWNLOAD_BYTES)
        self.local = not via_api and os.geteuid() == 0 and Path(HOME).is_dir()

    def _api(self, method: str, route: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token(USER)}", "X-Machine-Name": ENV["FIRECREST_SYSTEM"]}
        r = requests.request(method, f"{self.gateway}/utilities/{route}", headers=headers, timeout=60, **kwargs)
        if r.status_code >= 300:
            raise SystemExit(f"{method} /utilities/{route}: {r.status_code} {r.text}")
        return r

    def create(self) -> None:
        if self.local:
            self._create_locally()
        else:
            self._create_via_api()

    def _create_locally(self) -> None:
        """As root, on the login node's filesystem (the embedded site shares it), owned by the user."""
        account = pwd.getpwnam(USER)
        own = lambda p: os.chown(p, account.pw_uid, account.pw_gid, follow_symlinks=False)  # noqa: E731
        for directory in (self.base, self.small, self.big):
            os.mkdir(directory, 0o755)
            own(directory)
        for name in SMALL[:3]:
            Path(self.small, name).write_text(f"{name}\n")
        os.mkdir(Path(self.small, "sub"), 0o755)
        os.symlink("a.txt", Path(self.small, "link"))
        for i in range(BIG_ENTRIES):
            Path(self.big, f"file-{i:04d}").write_text(f"{i}\n")
        Path(self.blob).write_bytes(self.data)
        for root, dirs, files in os.walk(self.base):
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
        if self.local:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            self._api("DELETE", "rm", data={"targetPath": self.base})


class Calls:
    """The gateway call and its floor for each case, sharing one session and one pooled SSH connection."""

    def __init__(self, gateway: str, raw: RawSSH, limit: int) -> None:
        self.url, self.raw, self.limit = f"{gateway}/utilities", raw, limit
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


def run_cases(calls: Calls, fixture: Fixture, n: int, seconds: int) -> Sections:
    """Each case sequentially against its floor, then (a) at CONCURRENT clients."""
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

    # (a) at 64 concurrent clients: the floor on 64 concurrent channels, the gateway with wrk.
    hdr = calls.renew()
    floor_c = measure(f"floor: raw SSH exec, {CONCURRENT} concurrent channels", calls.ls(fixture.small,
                      len(SMALL))[1], 50 * CONCURRENT, CONCURRENT)
    ls_url = f"{calls.url}/ls?targetPath={quote(fixture.small, safe='/')}"
    conc = wrk(f"GET /utilities/ls, {CONCURRENT} clients (wrk)", ls_url, hdr, CONCURRENT, seconds)
    sections[0][1].extend([(floor_c, None), (conc, floor_c)])
    return sections


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
    parser.add_argument("--seconds", type=int, default=10, help="duration of the concurrent run")
    parser.add_argument("--n", type=int, default=300, help="requests per sequential measurement")
    parser.add_argument("--gateway", default=ENV.get("FIRECREST_URL", ""))
    parser.add_argument("--via-api", action="store_true", help="make the test files through the API, not as root")
    args = parser.parse_args()

    limit = site().limits.max_file_size_mb * 1024 * 1024
    fixture = Fixture(args.gateway, args.via_api)
    fixture.create()
    raw = RawSSH(USER)
    calls = Calls(args.gateway, raw, limit)
    try:
        sections = run_cases(calls, fixture, args.n, args.seconds)
    finally:
        raw.close()
        fixture.remove()
    print_report(fixture, limit, sections)


if __name__ == "__main__":
    main()
