"""A steady mixed load from several users through the gateway, as the fault tests and the soak run it.

Each user has four workers: utilities calls (a small file written, listed, checksummed, viewed and removed; every
answer compared with what was written), job submissions (tagged by Slurm with their task id), transfers (an upload
through Swift finished with the command the task gives, then a download fetched from its temporary URL; the bytes
compared) and a poller that follows every task the others started, as pyfirecrest does. Every request is recorded
as an `Outcome`; `settle` then waits until every task ended and names what was lost: a task left unfinished, a job
submitted twice, a transfer with wrong bytes.

Natively only: the load runs as root on the site's host (Slurm's view of the jobs, the users' files for downloads).
"""

from __future__ import annotations

import hashlib
import os
import random
import shlex
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import requests

from common.task_status import FINAL

MACHINE_HEADER = "X-Machine-Name"
TIMEOUT = 30.0  # the client's request timeout: an answer later than this is a hang
ENDED = {s.value for s in FINAL}  # done, failed, or deleted (an invalidated upload: 302)
FAILED = {"400", "115", "118"}
WAITING_UPLOAD = {"110", "111"}
UNANSWERED = "task of a request that got no answer"
TRANSFERS_IN_FLIGHT = 4  # per user, at most  # an upload's URL offered, its object not yet there


def answered(reply: requests.Response | None) -> TypeGuard[requests.Response]:
    return reply is not None and reply.status_code == 200


@dataclass
class Outcome:
    op: str
    user: str
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no answer (connection refused or reset, or the client's timeout)
    error: str | None  # the exception's name and text, or what was wrong with the answer
    headers: dict[str, str]  # names in lower case (HAProxy sends them so)
    body: str


@dataclass
class Started:
    """A task the load started, and what its end must show."""

    user: str
    kind: str  # "job", "upload" or "download"; or UNANSWERED
    expect: str = ""  # the sha256 a transfer's bytes must have
    target: str = ""  # an upload's target path on the cluster
    final: dict = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the request that started it was sent
    last: str = ""  # the last status the load saw


class User:
    """One user's HTTP client of the gateway: its token (client credentials) and a record of every call."""

    def __init__(self, load: MixedLoad, name: str) -> None:
        self.load, self.name = load, name
        self._token, self._fetched = "", 0.0
        self._lock = threading.Lock()
        self.session = requests.Session()

    def token(self) -> str:
        """Renewed every 2 minutes (tokens live 5); while Keycloak cannot issue one the last one is kept."""
        with self._lock:
            if not self._token or time.monotonic() - self._fetched >= 120:
                self._renew()
            return self._token

    def renew(self) -> bool:
        """A new token now; False if Keycloak did not issue one."""
        with self._lock:
            return self._renew()

    def _renew(self) -> bool:
        env = self.load.env
        reply = self.call("token", "POST", env["FIRECREST_TOKEN_URL"], auth_header=False,
                          data={"grant_type": "client_credentials"},
                          auth=(env[f"FIRECREST_CLIENT_ID_{self.name.upper()}"],
                                env[f"FIRECREST_CLIENT_SECRET_{self.name.upper()}"]))
        if reply is None or reply.status_code != 200:
            return False
        self._token, self._fetched = reply.json()["access_token"], time.monotonic()
        return True

    def call(self, op: str, method: str, url: str, auth_header: bool = True, headers: dict[str, str] | None = None,
             **kw: object) -> requests.Response | None:
        headers = {MACHINE_HEADER: self.load.machine, "X-Request-ID": f"load-{uuid.uuid4().hex[:16]}",
                   **(headers or {})}
        if auth_header:
            headers["Authorization"] = f"Bearer {self.token()}"
        if not url.startswith("http"):
            url = self.load.env["FIRECREST_URL"] + url
        t0 = time.monotonic()
        try:
            reply = self.session.request(method, url, headers=headers, timeout=TIMEOUT, **kw)  # type: ignore[arg-type]
        except requests.RequestException as e:
            self.load.record(Outcome(op, self.name, t0, time.monotonic() - t0, None, f"{type(e).__name__}: {e}",
                                     {}, ""))
            return None
        body = reply.text if "text/event-stream" not in reply.headers.get("Content-Type", "") else ""
        self.load.record(Outcome(op, self.name, t0, time.monotonic() - t0, reply.status_code, None,
                                 {k.lower(): v for k, v in reply.headers.items()}, body[:2000]))
        return reply

    def wrong(self, op: str, what: str) -> None:
        """An answer that came back 2xx but said something untrue."""
        self.load.record(Outcome(op, self.name, time.monotonic(), 0.0, 200, f"wrong answer: {what}", {}, ""))


class MixedLoad:
    def __init__(self, env: dict[str, str], workdir: Path, users: tuple[str, ...] = ("alice", "bob"),
                 machine: str = "cluster", pause: float = 0.5) -> None:
        self.env, self.workdir, self.machine, self.pause = env, workdir, machine, pause
        self.users = [User(self, name) for name in users]
        self.outcomes: list[Outcome] = []
        self.tasks: dict[str, Started] = {}
        self.job_tags: dict[str, set[str]] = defaultdict(set)  # task id -> Slurm job ids seen carrying it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.dirs = {u.name: f"/home/{u.name}/load-{uuid.uuid4().hex[:8]}" for u in self.users}
        self._before: dict[str, set[str]] = {u.name: set() for u in self.users}  # their tasks before the load

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def since(self, t0: float, t1: float = float("inf")) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if t0 <= o.started < t1]

    def start(self) -> None:
        self._prepare()
        workers: list[Callable[[User], None]] = [self._utilities, self._submissions, self._transfers, self._poller]
        for user in self.users:
            for work in workers:
                self._threads.append(threading.Thread(target=self._loop, args=(work, user), daemon=True,
                                                      name=f"load-{user.name}-{work.__name__}"))
        self._threads.append(threading.Thread(target=self._watch_jobs, daemon=True, name="load-jobs"))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []

    def _prepare(self) -> None:
        """Each user's own directory for the load's files, made as the user (root must not own it); and every
        place for transfers in flight free (uploads other programs of these users left waiting are invalidated)."""
        for user in self.users:
            subprocess.run(["su", user.name, "-s", "/bin/sh", "-c", 'mkdir -p -- "$1"', "-", self.dirs[user.name]],
                           check=True)
            self._before[user.name] = set(self._free_places(user))

    def _free_places(self, user: User) -> dict[str, dict]:
        """Invalidates every upload of the user's that waits for its object (none of them will come); returns
        the user's tasks."""
        reply = user.call("tasks", "GET", "/tasks/")
        tasks: dict[str, dict] = reply.json()["tasks"] if reply is not None and reply.status_code == 200 else {}
        for tid, task in tasks.items():
            if task.get("service") == "storage" and task["status"] in WAITING_UPLOAD:
                user.call("xfer-invalidate", "POST", "/storage/xfer-external/invalidate", headers={"X-Task-Id": tid})
        return tasks

    def _adopt_unanswered(self) -> None:
        """The tasks of requests that got no answer (their service died with them in flight): unknown to the load
        until now, they must end all the same (and an upload among them is invalidated, as its user would)."""
        for user in self.users:
            reply = user.call("tasks", "GET", "/tasks/")
            if reply is None or reply.status_code != 200:
                continue
            with self._lock:
                for tid in reply.json()["tasks"].keys() - self._before[user.name] - self.tasks.keys():
                    self.tasks[tid] = Started(user.name, UNANSWERED)

    def _loop(self, work: Callable[[User], None], user: User) -> None:
        while not self._stop.is_set():
            try:
                work(user)
            except Exception as e:  # a bug of the load itself must show, not stop the thread silently
                user.wrong(work.__name__, f"load error {type(e).__name__}: {e}")
            self._stop.wait(self.pause * (0.5 + random.random()))

    # --- the workers -------------------------------------------------------------------------------------------

    def _utilities(self, user: User) -> None:
        name = f"u-{uuid.uuid4().hex[:10]}.txt"
        path = f"{self.dirs[user.name]}/{name}"
        content = f"{user.name} {uuid.uuid4()}\n".encode()
        reply = user.call("upload", "POST", "/utilities/upload", data={"targetPath": self.dirs[user.name]},
                          files={"file": (name, content)})
        if reply is None or reply.status_code != 201:
            return
        reply = user.call("ls", "GET", "/utilities/ls", params={"targetPath": self.dirs[user.name]})
        if answered(reply) and name not in {f["name"] for f in reply.json()["output"]}:
            user.wrong("ls", f"{name} missing from the listing")
        reply = user.call("checksum", "GET", "/utilities/checksum", params={"targetPath": path})
        if answered(reply) and reply.json()["output"] != hashlib.sha256(content).hexdigest():
            user.wrong("checksum", f"{path}: {reply.json()['output']}")
        reply = user.call("view", "GET", "/utilities/view", params={"targetPath": path})
        if answered(reply) and reply.json()["output"] != content.decode():
            user.wrong("view", f"{path}: {reply.json()['output']!r}")
        user.call("rm", "DELETE", "/utilities/rm", data={"targetPath": path})
        user.call("systems", "GET", "/status/systems")

    def _submissions(self, user: User) -> None:
        script = f"#!/bin/bash\n#SBATCH --job-name=load\n#SBATCH --output=/dev/null\necho {uuid.uuid4().hex}\n"
        sent = time.monotonic()
        reply = user.call("submit", "POST", "/compute/jobs/upload", files={"file": ("load.sh", script.encode())})
        if reply is not None and reply.status_code == 201:
            self._started(reply.json()["task_id"], Started(user.name, "job", at=sent))
        self._stop.wait(self.pause * 2)  # jobs are the heaviest call: fewer of them

    def _transfers(self, user: User) -> None:
        with self._lock:
            in_flight = sum(t.user == user.name and t.kind != "job" and not t.final for t in self.tasks.values())
        if in_flight >= TRANSFERS_IN_FLIGHT:
            return  # stay below the site's bound (8): a probe of the fault tests must find a place
        data = os.urandom(256 * 1024 + random.randrange(4096))
        digest = hashlib.sha256(data).hexdigest()
        local = self.workdir / f"{user.name}-{uuid.uuid4().hex[:10]}.bin"
        local.write_bytes(data)
        try:
            self._upload(user, local, digest)
        finally:
            local.unlink(missing_ok=True)
        self._download(user)

    def _upload(self, user: User, local: Path, digest: str) -> None:
        target = f"{self.dirs[user.name]}/{local.name}"
        reply = user.call("xfer-upload", "POST", "/storage/xfer-external/upload",
                          data={"sourcePath": str(local), "targetPath": target})
        if reply is None or reply.status_code != 201:
            return
        task_id = reply.json()["task_id"]
        self._started(task_id, Started(user.name, "upload", expect=digest, target=target))
        task = self._wait(user, task_id, until="111")
        if task.get("status") != "111":
            if task.get("status") not in ENDED:  # the load stops, or the offer never came: give the place back
                self._invalidate(user, task_id)
            return
        command = task["data"]["msg"]["command"]  # what pyfirecrest's finish_upload runs
        t0 = time.monotonic()
        done = subprocess.run(shlex.split(command), capture_output=True, timeout=120)
        ok = done.returncode == 0
        self.record(Outcome("swift-put", user.name, t0, time.monotonic() - t0, 201 if ok else None,
                            None if ok else done.stderr.decode(errors="replace")[-500:], {}, ""))
        if not ok:  # the upload will not come: give the place back, as a user would
            self._invalidate(user, task_id)

    def _download(self, user: User) -> None:
        """Downloads one of the files the user uploaded before (their bytes are known)."""
        with self._lock:
            done = [(tid, t) for tid, t in self.tasks.items()
                    if t.user == user.name and t.kind == "upload" and t.final.get("status") == "114"]
        if not done:
            return
        _, source = random.choice(done)
        reply = user.call("xfer-download", "POST", "/storage/xfer-external/download",
                          data={"sourcePath": source.target})
        if reply is None or reply.status_code != 201:
            return
        task_id = reply.json()["task_id"]
        self._started(task_id, Started(user.name, "download", expect=source.expect))
        task = self._wait(user, task_id, until="117")
        if task.get("status") != "117":
            return
        t0 = time.monotonic()
        try:
            got = requests.get(task["data"]["url"], timeout=TIMEOUT)
        except requests.RequestException as e:
            self.record(Outcome("swift-get", user.name, t0, time.monotonic() - t0, None, str(e), {}, ""))
            return
        self.record(Outcome("swift-get", user.name, t0, time.monotonic() - t0, got.status_code, None, {}, ""))
        if got.status_code == 200 and hashlib.sha256(got.content).hexdigest() != source.expect:
            user.wrong("swift-get", f"task {task_id}: the bytes differ from {source.target}")

    def _invalidate(self, user: User, task_id: str) -> None:
        """Ends an upload the user will not make (its task is deleted: it ends here, not in the tasks service)."""
        reply = user.call("xfer-invalidate", "POST", "/storage/xfer-external/invalidate",
                          headers={"X-Task-Id": task_id})
        if reply is not None and reply.status_code == 201:
            with self._lock:
                self.tasks[task_id].final = {"status": "invalidated"}

    def _poller(self, user: User) -> None:
        with self._lock:
            pending = [tid for tid, t in self.tasks.items() if t.user == user.name and not t.final]
        for i in range(0, len(pending), 50):
            self._poll(user, pending[i:i + 50])

    # --- tasks ---------------------------------------------------------------------------------------------------

    def _started(self, task_id: str, started: Started) -> None:
        with self._lock:
            self.tasks[task_id] = started

    def _poll(self, user: User, task_ids: list[str]) -> dict[str, dict]:
        reply = user.call("tasks", "GET", "/tasks/", params={"tasks": ",".join(task_ids)})
        if reply is None or reply.status_code != 200:
            return {}
        tasks: dict[str, dict] = reply.json()["tasks"]
        with self._lock:
            for tid, task in tasks.items():
                if tid in self.tasks:
                    self.tasks[tid].last = task["status"]
                    if task["status"] in ENDED:
                        self.tasks[tid].final = task
        return tasks

    def _wait(self, user: User, task_id: str, until: str, timeout: float = 120) -> dict:
        """Polls one task until it reaches `until` or ends (or the load stops)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            task = self._poll(user, [task_id]).get(task_id, {})
            if task.get("status") == until or task.get("status") in ENDED:
                return task
            time.sleep(0.2)
        return {}

    def _watch_jobs(self) -> None:
        """Slurm's view, every few seconds: which jobs carry which task's tag (a tag on two jobs: submitted twice).
        Finished jobs leave squeue after MinJobAge, so the view is collected over the whole run."""
        while not self._stop.wait(3):
            self.collect_job_tags()

    def collect_job_tags(self) -> None:
        env = {**os.environ, "SLURM_CONF": self.env["SLURM_CONF"]}
        try:
            out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i %k"], env=env, capture_output=True,
                                 text=True, timeout=20).stdout
        except subprocess.TimeoutExpired:
            return  # the controller is down: the next look sees the jobs
        with self._lock:
            for line in out.splitlines():
                job, _, comment = line.partition(" ")
                if comment.startswith("firecrest-task="):
                    self.job_tags[comment.removeprefix("firecrest-task=")].add(job)

    # --- the end -------------------------------------------------------------------------------------------------

    def settle(self, timeout: float = 300) -> list[str]:
        """After `stop`: waits until every task the load started ended; returns what was lost or wrong."""
        self._adopt_unanswered()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for user in self.users:
                with self._lock:
                    pending = [tid for tid, t in self.tasks.items() if t.user == user.name and not t.final]
                for i in range(0, len(pending), 50):
                    for tid, task in self._poll(user, pending[i:i + 50]).items():
                        if task["status"] in WAITING_UPLOAD:  # its upload will never come now (stopped)
                            self._invalidate(user, tid)
            with self._lock:
                if all(t.final for t in self.tasks.values()):
                    break
            time.sleep(1)
        self.collect_job_tags()
        return self.problems()

    def problems(self) -> list[str]:
        found = []
        with self._lock:
            tasks = dict(self.tasks)
            tags = {tid: set(jobs) for tid, jobs in self.job_tags.items()}
            wrong = [o for o in self.outcomes if o.error and o.error.startswith(("wrong answer", "load error"))]
        for tid, t in tasks.items():
            status = t.final.get("status")
            if not status:
                found.append(f"task {tid} ({t.user}'s {t.kind}) never ended (last seen at {t.last or '-'})")
            elif status in FAILED and not t.final.get("data"):
                found.append(f"task {tid} ({t.user}'s {t.kind}) failed without a reason")
            elif t.kind == "upload" and status == "114" and not self._has_bytes(t):
                found.append(f"task {tid}: {t.target} does not hold the uploaded bytes")
            if t.kind == "job" and len(tags.get(tid, ())) > 1:
                found.append(f"task {tid}: submitted {len(tags[tid])} times (jobs {sorted(tags[tid])})")
            if t.kind == "job" and status == "200" and str(t.final["data"].get("jobid")) not in tags.get(tid, {""}):
                found.append(f"task {tid} reports job {t.final['data'].get('jobid')}, Slurm has {tags.get(tid)}")
        found += [f"{o.user} {o.op}: {o.error}" for o in wrong]
        return found

    @staticmethod
    def _has_bytes(t: Started) -> bool:
        try:
            return hashlib.sha256(Path(t.target).read_bytes()).hexdigest() == t.expect
        except OSError:
            return False

    def cleanup(self) -> None:
        """Removes the users' load directories and frees the transfer places of uploads left waiting (a probe's
        whose invalidation met a dead service): the next program of these users finds all its places."""
        for user in self.users:
            self._free_places(user)
            subprocess.run(["rm", "-rf", "--", self.dirs[user.name]], check=False)
