"""The job-event poller: compute processes watch the jobs of users who have a job event stream open.

Streams are served by the tasks service (GET /tasks/events/jobs), which keeps, in Redis, who listens and the
longest-lived of their tokens. Every compute process asks it (POST /events/jobs/claim) for the (system, user)
whose poll is due: each is handed to one process at a time, under a lease, so a user's jobs cost one squeue per
POLL_S however many streams (and replicas) follow them, and none per listener. The poll runs as the user, with
their token, through the command classes; what it saw is published by compare-and-publish in Redis (POST
/events/jobs/publish), so only changes become events and none twice. A process that dies while polling lets
the lease run out, and another one takes the poll over.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common.auth import Identity, TokenValidator
from common.commands import Command, Output
from common.errors import FirecrestError
from common.remote import Remote
from common.slurm.accounting import Accounting
from common.slurm.fields import FINISHED, number, state
from common.slurm.queue import squeue_id, squeue_json
from common.tasks_client import TasksClient
from common.values import valid_job_id

log = logging.getLogger("firecrest.compute.job_events")

POLL_S = 2.0  # a watched user's jobs are polled this often
RETRY_S = 5.0  # after a failed poll
CLAIM_EVERY_S = 1.0
LEASE_S = 20.0  # a poll not published within this is taken over by another process
WORKERS = 4  # polls run at once by this process
MAX_ACCOUNTED = 100  # jobs that left the queue, resolved by one sacct


def exit_code(value: Any) -> str | None:
    """squeue's exit code as sacct prints it (`code:signal`): 22.05 gives the raw wait status, later versions
    an object with the return code and signal."""
    if isinstance(value, dict) and "return_code" in value:
        signal = value.get("signal")
        sig = number(signal.get("id")) if isinstance(signal, dict) else None
        return f"{number(value.get('return_code')) or 0}:{sig or 0}"
    raw = number(value)
    return None if raw is None else f"{(raw >> 8) & 0xFF}:{raw & 0x7F}"


def job_event(system: str, jobid: str, name: str, current: str, code: str | None) -> dict[str, Any]:
    final = current in FINISHED
    return {"jobid": jobid, "name": name, "state": current, "final": final, "system": system,
            "exit_code": code if final else None}


class JobStates(Command[dict[str, dict[str, Any]]]):
    """squeue --json: every job of the user slurmctld holds (finished ones for MinJobAge), by squeue's id."""

    name = "squeue"

    def __init__(self, system: str, user: str) -> None:
        self.system, self.user = system, user

    def argv(self) -> list[str]:
        return ["squeue", "--json", f"--user={self.user}"]

    def parse(self, result: Output) -> dict[str, dict[str, Any]]:
        jobs = {}
        for job in squeue_json(result.out).get("jobs", []):
            if job.get("user_name") != self.user:  # 22.05 ignores --user with --json
                continue
            jobid = squeue_id(job)
            jobs[jobid] = job_event(self.system, jobid, str(job.get("name") or ""), state(job),
                                    exit_code(job.get("exit_code")))
        return jobs


class JobPoller:
    def __init__(self, tasks: TasksClient, remote: Remote, validator: TokenValidator) -> None:
        self.tasks, self.remote, self.validator = tasks, remote, validator
        self.holder = secrets.token_hex(8)
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="job-events")
        self.free = threading.Semaphore(WORKERS)
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="job-events-claim", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.claim_once()
            except Exception as e:  # the tasks service restarting: try again shortly
                log.warning("job events: claim failed: %r", e)
            time.sleep(CLAIM_EVERY_S)

    def claim_once(self) -> int:
        free = 0
        while self.free.acquire(blocking=False):
            free += 1
        if not free:
            return 0
        try:
            polls = self.tasks.claim_job_polls(self.holder, LEASE_S, free)
        except BaseException:
            self._release(free)
            raise
        self._release(free - len(polls))
        for poll in polls:
            try:
                self.pool.submit(self._run, poll)
            except RuntimeError:  # the process is shutting down: the poll's lease runs out, another takes it
                self.free.release()
        return len(polls)

    def _release(self, count: int) -> None:
        for _ in range(count):
            self.free.release()

    def _run(self, poll: dict[str, Any]) -> None:
        try:
            self.poll(poll)
        except Exception:
            log.exception("job events: poll of %s on %s failed", poll.get("user"), poll.get("system"))
        finally:
            self.free.release()

    def poll(self, poll: dict[str, Any]) -> None:
        system, user = str(poll["system"]), str(poll["user"])
        identity = self.identity(poll)
        if identity is None or identity.username != user:
            log.warning("job events: no valid token to poll %s on %s", user, system)
            return  # the streams end with their tokens; the poll lapses with its listeners
        try:
            jobs, gone = self.observe(identity, system, poll.get("known") or {})
        except FirecrestError as e:
            log.warning("job events: poll of %s on %s: %s", user, system, e.error)
            self.tasks.publish_jobs(identity.token, system, self.holder, {}, [], RETRY_S)
            return
        self.tasks.publish_jobs(identity.token, system, self.holder, jobs, gone, POLL_S)

    def identity(self, poll: dict[str, Any]) -> Identity | None:
        secret = self.tasks.sealer.unseal(str(poll.get("token", "")))
        token = secret.get("token") if secret else None
        if not isinstance(token, str):
            return None
        try:
            return self.validator.validate(token)  # checked again here: never trust what comes back from a store
        except FirecrestError:
            return None

    def observe(self, identity: Identity, system: str,
                known: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The user's jobs now (squeue; sacct for those that left the queue unseen in a final state) and the ids
        of finished jobs slurmctld forgot (dropped from the snapshot)."""
        rid = f"job-events-{secrets.token_hex(6)}"
        jobs = self.remote.run(identity, system, JobStates(system, identity.username), rid)
        left = [jid for jid, job in known.items() if jid not in jobs]
        gone = [jid for jid in left if known[jid].get("final")]
        unresolved = [jid for jid in left if not known[jid].get("final") and valid_job_id(jid)][:MAX_ACCOUNTED]
        if unresolved:
            for row in self.remote.run(identity, system, Accounting(jobs=unresolved), rid):
                current = str(row.get("state", "")).split(" ")[0]  # "CANCELLED by 1000"
                if row.get("jobid") in unresolved and current in FINISHED:
                    jobs[row["jobid"]] = job_event(system, row["jobid"], row.get("name", ""), current,
                                                   row.get("exit_code"))
        return jobs, gone
