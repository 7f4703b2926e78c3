"""External transfers of one file end to end, against the raw Swift temp-URL PUT and GET of the same file in the
same run.

Upload, end to end: POST /storage/xfer-external/upload, poll the task (every 10 ms) until 111, run the returned
command as pyfirecrest does (shlex.split + subprocess, no shell), poll until 114 (the file is on the cluster,
checksummed, renamed into place). Download, end to end: POST /storage/xfer-external/download, poll until 117,
then GET the URL into a local file with curl. Floors: `curl -T file <PUT temp URL>` and `curl -o file <GET temp
URL>` of the same file into a scratch object of the service's account (signed here with the account's key).
Each is run --runs times, alternating floor and end to end; medians are reported, with where the time goes.

Usage (site up, as root): .venv/bin/python bench/storage.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import requests
from swiftclient.client import Connection
from swiftclient.utils import generate_temp_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository root
from bench.common_bench import ENV, site, token

MiB = 1024 * 1024
FINAL = {"114", "115", "117", "118", "400"}


class Client:
    def __init__(self) -> None:
        self.base = ENV["FIRECREST_URL"]
        self.session = requests.Session()
        self.token = token("alice")
        self.fetched = time.monotonic()

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self.fetched > 120:  # tokens live 5 minutes
            self.token, self.fetched = token("alice"), time.monotonic()
        return {"Authorization": f"Bearer {self.token}", "X-Machine-Name": "cluster"}

    def post(self, path: str, **form: str) -> str:
        reply = self.session.post(f"{self.base}/storage{path}", data=form, headers=self.headers(), timeout=60)
        reply.raise_for_status()
        return reply.json()["task_id"]

    def wait(self, task_id: str, until: str, marks: dict[str, float]) -> dict:
        while True:
            reply = self.session.get(f"{self.base}/tasks/{task_id}", headers=self.headers(), timeout=60)
            task = reply.json()["task"]
            marks.setdefault(task["status"], time.perf_counter())
            if task["status"] >= until or task["status"] in FINAL:
                return task
            time.sleep(0.01)


class RawSwift:
    """The floor: plain curl against temp URLs of a scratch object, signed with its container's key."""

    def __init__(self) -> None:
        storage = site().storage
        self.conn = Connection(authurl=storage.auth_url, user=ENV["SWIFT_USER"], key=ENV["SWIFT_KEY"])
        url, _ = self.conn.get_auth()
        self.account_path = url.split("/v1/")[1]
        self.key = secrets.token_hex(16)
        self.public = storage.public_url.rstrip("/")
        self.container = "bench-floor"
        self.conn.put_container(self.container, headers={"X-Container-Meta-Temp-URL-Key": self.key})

    def url(self, name: str, method: str) -> str:
        path = f"/v1/{self.account_path}/{self.container}/{name}"
        signed = generate_temp_url(path, 3600, self.key, method)
        return f"{self.public}{quote(path)}?{signed[len(path) + 1:]}"

    def put(self, local: Path, name: str) -> float:
        start = time.perf_counter()
        subprocess.run(["curl", "-fsS", "-X", "PUT", "-T", str(local), "-o", "/dev/null", self.url(name, "PUT")],
                       check=True)
        return time.perf_counter() - start

    def get(self, name: str, dest: Path) -> float:
        start = time.perf_counter()
        subprocess.run(["curl", "-fsS", "-o", str(dest), self.url(name, "GET")], check=True)
        return time.perf_counter() - start

    def clean(self, name: str) -> None:
        self.conn.delete_object(self.container, name)


def upload(client: Client, local: Path, target_dir: str) -> tuple[float, dict[str, float]]:
    marks: dict[str, float] = {}
    start = time.perf_counter()
    task_id = client.post("/xfer-external/upload", sourcePath=str(local), targetPath=target_dir)
    task = client.wait(task_id, "111", marks)
    command_start = time.perf_counter()
    subprocess.run(shlex.split(task["data"]["msg"]["command"]), check=True)
    command_end = time.perf_counter()
    task = client.wait(task_id, "114", marks)
    end = time.perf_counter()
    assert task["status"] == "114", task
    return end - start, {"POST to 111": command_start - start, "client PUT (the command)": command_end - command_start,
                         "PUT done to 114 (pull job)": end - command_end}


def download(client: Client, source: str, dest: Path) -> tuple[float, dict[str, float]]:
    marks: dict[str, float] = {}
    start = time.perf_counter()
    task_id = client.post("/xfer-external/download", sourcePath=source)
    task = client.wait(task_id, "117", marks)
    assert task["status"] == "117", task
    ready = time.perf_counter()
    subprocess.run(["curl", "-fsS", "-o", str(dest), task["data"]["url"]], check=True)
    end = time.perf_counter()
    client.session.post(f"{client.base}/storage/xfer-external/invalidate", timeout=60,
                        headers={**client.headers(), "X-Task-Id": task_id})
    return end - start, {"POST to 117 (push job)": ready - start, "client GET": end - ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    client, raw = Client(), RawSwift()
    target = Path("/home/alice") / f"bench-storage-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    os.chown(target, *_ids("alice"))
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        local = Path(tmp) / "data.bin"
        subprocess.run(["dd", "if=/dev/urandom", f"of={local}", "bs=1M", f"count={args.size_mib}", "status=none"],
                       check=True)
        subprocess.run(["sync"], check=True)
        figures: dict[str, list[float]] = {"raw PUT": [], "raw GET": [], "upload": [], "download": []}
        phases: dict[str, list[float]] = {}
        try:
            for run in range(args.runs):
                name = f"floor-{uuid.uuid4().hex[:8]}"
                figures["raw PUT"].append(raw.put(local, name))
                figures["raw GET"].append(raw.get(name, Path(tmp) / "raw.out"))
                raw.clean(name)
                took, parts = upload(client, local, str(target))
                figures["upload"].append(took)
                took_down, parts_down = download(client, str(target / local.name), Path(tmp) / "down.out")
                figures["download"].append(took_down)
                for key, value in {**parts, **parts_down}.items():
                    phases.setdefault(key, []).append(value)
                print(f"run {run + 1}: raw PUT {figures['raw PUT'][-1]:.2f} s, upload {took:.2f} s, "
                      f"raw GET {figures['raw GET'][-1]:.2f} s, download {took_down:.2f} s", flush=True)
        finally:
            subprocess.run(["rm", "-rf", "--", str(target)], check=False)
    med = {k: statistics.median(v) for k, v in figures.items()}
    rate = {k: size / MiB / v for k, v in med.items()}
    print(f"\n{args.size_mib} MiB, median of {args.runs} runs (MiB/s; ratio to the floor of the same run)")
    print(f"  upload end to end   {rate['upload']:7.1f} MiB/s  {med['upload']:6.2f} s   raw PUT {rate['raw PUT']:7.1f}"
          f" MiB/s  ratio {rate['upload'] / rate['raw PUT']:.0%}  (target >= 60%)")
    print(f"  download end to end {rate['download']:7.1f} MiB/s  {med['download']:6.2f} s   raw GET "
          f"{rate['raw GET']:7.1f} MiB/s  ratio {rate['download'] / rate['raw GET']:.0%}  (target >= 60%)")
    where = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in phases.items())
    print(f"  where the time goes (median s): {where}")


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


if __name__ == "__main__":
    main()
