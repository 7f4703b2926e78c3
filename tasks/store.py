"""Tasks in Redis, and only there: any number of tasks-service processes and replicas serve the same state.

Keys (all prefixed `firecrest:`):
  task:<id>          the task's JSON (the public fields), with the service's TTL, renewed on every update;
  private:<id>       what the owning service needs to resume the work after a restart (opaque to us, never shown
                     to anyone), same TTL, dropped when the task is final;
  user:<user>        a sorted set of the user's task ids by creation time (the listing; stale ids are pruned);
  inflight:<service> a sorted set of unfinished task ids by lease deadline: a service that dies holding a task
                     lets the lease run out, and another process claims the task (`claim`) and resumes it;
  holder:<id>        who holds the lease (a random id of the process's choosing): an update or renewal that
                     names another holder is refused, so a process that lost its lease cannot undo the new
                     holder's work.
Every change (create, update, delete) also adds the task to its user's event stream (tasks/events.py) in the same
transaction: a stream never misses a change, and never shows one that did not happen.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from common.task_status import FINAL, Status
from common.task_status import parse as parse_status

from .events import publish_task

# Seconds, renewed on every update (as upstream). `test`: tasks of no live service, which no process claims: the
# site's tests (they hold the services' credential) use it so that they never race a service's recovery.
TTL = {"compute": 86400, "storage": 604800, "test": 3600}
DELETED_TTL = 300
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
PREFIX = "firecrest:"
LIST_BATCH = 500  # tasks read from Redis at once for a whole listing
DEFAULT_URL = "redis://127.0.0.1:6379/0"  # a site file without `tasks.redis_url`
NEW_ID = re.compile(r"[0-9a-f]{32}")
LOST = "The service running this task stopped, and what it needed to resume the task was lost; nothing more will happen"

# Atomically take up to ARGV[3] tasks whose lease ran out and give them a new lease (and holder ARGV[4], kept
# under ARGV[5]..id for ARGV[6] s): two processes never claim the same task.
CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  if ARGV[4] ~= '' then redis.call('SET', ARGV[5] .. id, ARGV[4], 'EX', tonumber(ARGV[6])) end
end
return ids
"""


class UnknownTask(Exception):
    pass


class NotOwner(Exception):
    pass


class InvalidStatus(Exception):
    pass


class LeaseLost(Exception):
    """The task's lease ran out and another process holds it now: the caller must leave the task alone."""


@dataclass(frozen=True)
class Claimed:
    task: dict[str, Any]
    private: str


def now_text() -> str:
    return time.strftime(TIME_FORMAT, time.localtime())


def text(value: Any) -> str:
    """A value read from Redis (bytes: the client does not decode) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


class TaskStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._claim = client.register_script(CLAIM)

    @classmethod
    def at(cls, url: str) -> TaskStore:
        """The store in the Redis at `url` (the site's `tasks.redis_url`); connections open on first use."""
        return cls(redis.Redis.from_url(url or DEFAULT_URL, socket_timeout=5, socket_connect_timeout=2,
                                        health_check_interval=30))

    @staticmethod
    def _key(kind: str, name: str) -> str:
        return f"{PREFIX}{kind}:{name}"

    def _open(self, service: str, user: str) -> str:
        """A user's unfinished tasks of one service (a bound on them is read without reading every task)."""
        return self._key("open", f"{service}:{user}")

    def unfinished(self, user: str, service: str) -> dict[str, dict[str, Any]]:
        """The user's tasks of `service` that have not ended, oldest first."""
        key = self._open(service, user)
        ids = [text(i) for i in self.r.zrange(key, 0, -1)]
        if not ids:
            return {}
        tasks: dict[str, dict[str, Any]] = {}
        for task_id, raw in zip(ids, self.r.mget([self._key("task", i) for i in ids]), strict=True):
            task = json.loads(raw) if raw else None
            if task is not None and task["user"] == user and not Status(task["status"]).final:
                tasks[task_id] = task
        ended = [i for i in ids if i not in tasks]
        if ended:
            self.r.zrem(key, *ended)  # expired, or ended while this was read (harmless: it is not in flight)
        return tasks

    def create(self, user: str, service: str, system: str | None, data: Any = "Queued",
               private: str | None = None, lease_s: float | None = None, holder: str | None = None,
               task_id: str | None = None) -> dict[str, Any]:
        """A new task; `task_id` when the service chose it (compute names a job's directory before the task
        exists: 32 random hex digits of its own, never one that exists)."""
        if service not in TTL:
            raise InvalidStatus(f"Service {service} is unknown")
        if task_id is not None and (not NEW_ID.fullmatch(task_id) or self.r.exists(self._key("task", task_id))):
            raise InvalidStatus("A new task's id must be 32 hexadecimal digits not in use")
        task_id = task_id or secrets.token_hex(16)  # unguessable, unlike upstream's md5 of a counter
        stamp = now_text()
        task = {
            "task_id": task_id, "hash_id": task_id, "user": user, "status": Status.QUEUED,
            "description": Status.QUEUED.description, "data": data, "service": service, "system": system,
            "created_at": stamp, "updated_at": stamp, "last_modify": stamp,
        }
        ttl = TTL[service]
        with self.r.pipeline(transaction=True) as p:
            p.set(self._key("task", task_id), json.dumps(task), ex=ttl)
            if private is not None:
                p.set(self._key("private", task_id), private, ex=ttl)
            p.zadd(self._key("user", user), {task_id: time.time()})
            p.expire(self._key("user", user), max(TTL.values()))
            p.zadd(self._open(service, user), {task_id: time.time()})
            p.expire(self._open(service, user), max(TTL.values()))
            # The creator holds the lease; with no lease the task is claimable at once by any process.
            p.zadd(self._key("inflight", service), {task_id: time.time() + (lease_s or 0)})
            if holder:
                p.set(self._key("holder", task_id), holder, ex=ttl)
            publish_task(p, task)
            p.execute()
        return task

    def get(self, task_id: str) -> dict[str, Any] | None:
        raw = self.r.get(self._key("task", task_id))
        return json.loads(raw) if raw else None

    def owned(self, task_id: str, user: str) -> dict[str, Any]:
        return self._mine(self.get(task_id), task_id, user)

    @staticmethod
    def _mine(task: dict[str, Any] | None, task_id: str, user: str) -> dict[str, Any]:
        if task is None:
            raise UnknownTask(task_id)
        if task["user"] != user:
            raise NotOwner(task_id)
        return task

    def list(self, user: str, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The user's tasks (all of them, or those of `ids` that are theirs), oldest first."""
        if ids is None:
            return dict(self.listing(user))
        return dict(self._read(user, ids))

    def listing(self, user: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every task of the user, oldest first, read LIST_BATCH at a time: a user with tens of thousands of tasks
        costs whoever streams them one batch of memory, not the whole listing at once (tens of MB of JSON, which a
        worker's memory kept as its high-water mark). Expired tasks leave the user's index on the way."""
        key = self._key("user", user)
        ids = [text(i) for i in self.r.zrange(key, 0, -1)]
        for start in range(0, len(ids), LIST_BATCH):
            gone: builtins.list[str] = []
            yield from self._read(user, ids[start:start + LIST_BATCH], gone)
            if gone:
                self.r.zrem(key, *gone)

    def _read(self, user: str, ids: builtins.list[str],
              gone: builtins.list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """The tasks of `ids` that exist and are the user's; the ids of those that no longer exist go to `gone`."""
        if not ids:
            return
        for task_id, raw in zip(ids, self.r.mget([self._key("task", i) for i in ids]), strict=True):
            task = json.loads(raw) if raw else None
            if task is None:
                if gone is not None:
                    gone.append(task_id)
            elif task["user"] == user:
                yield task_id, task

    def update(self, task_id: str, user: str, status: str, data: Any = None, private: str | None = None,
               lease_s: float | None = None, holder: str | None = None) -> dict[str, Any]:
        code = parse_status(status)
        if code is None:
            raise InvalidStatus(f"Status code error: {status}")

        def write(task: dict[str, Any], p: redis.client.Pipeline) -> None:
            if task["status"] == Status.INVALID:  # deleted by its owner: the work's late outcome must not revive it
                raise UnknownTask(f"Task {task_id} was deleted")
            stamp = now_text()
            task.update(status=code, description=code.description, updated_at=stamp, last_modify=stamp,
                        data=code.description if data is None else data)
            ttl = TTL[task["service"]]
            inflight = self._key("inflight", task["service"])
            p.multi()
            p.set(self._key("task", task_id), json.dumps(task), ex=ttl)
            if code.final:
                p.delete(self._key("private", task_id), self._key("holder", task_id))
                p.zrem(inflight, task_id)
                p.zrem(self._open(task["service"], task["user"]), task_id)
            else:
                if private is not None:
                    p.set(self._key("private", task_id), private, ex=ttl)
                else:
                    p.expire(self._key("private", task_id), ttl)
                if lease_s is not None:
                    p.zadd(inflight, {task_id: time.time() + lease_s})
            publish_task(p, task)

        return self._change(task_id, user, holder, write)

    def renew(self, task_id: str, user: str, lease_s: float, holder: str | None = None) -> None:
        """Extend the lease of an unfinished task (long work: a transfer, an upload awaited from the user)."""

        def write(task: dict[str, Any], p: redis.client.Pipeline) -> None:
            if task["status"] in FINAL:
                raise UnknownTask(f"Task {task_id} is finished")
            p.multi()
            p.zadd(self._key("inflight", task["service"]), {task_id: time.time() + lease_s}, xx=True)

        self._change(task_id, user, holder, write)

    def _change(self, task_id: str, user: str, holder: str | None,
                write: Callable[[dict[str, Any], redis.client.Pipeline], None]) -> dict[str, Any]:
        """`write` applied to the task as read under WATCH (the task and its holder): the write goes through only
        if neither changed between the read and the write, else it is tried again on what is there now. So a
        delete that lands meanwhile is never undone by a late outcome, and a process whose lease ran out and was
        claimed by another (`holder` names someone else now) cannot overwrite what the new holder does."""
        task_key, holder_key = self._key("task", task_id), self._key("holder", task_id)
        while True:
            with self.r.pipeline(transaction=True) as p:
                p.watch(task_key, holder_key)
                raw, current = p.get(task_key), p.get(holder_key)
                task = self._mine(json.loads(raw) if raw else None, task_id, user)
                if holder and current is not None and text(current) != holder:
                    raise LeaseLost(task_id)
                write(task, p)
                try:
                    p.execute()
                    return task
                except redis.WatchError:  # changed between the read and the write: read it again
                    continue

    def delete(self, task_id: str, user: str) -> None:
        """Marked not valid any more and gone after DELETED_TTL (as upstream)."""
        task = self.owned(task_id, user)
        stamp = now_text()
        task.update(status=Status.INVALID, description=Status.INVALID.description, updated_at=stamp,
                    last_modify=stamp)
        with self.r.pipeline(transaction=True) as p:
            p.set(self._key("task", task_id), json.dumps(task), ex=DELETED_TTL)
            p.delete(self._key("private", task_id), self._key("holder", task_id))
            p.zrem(self._key("inflight", task["service"]), task_id)
            p.zrem(self._open(task["service"], user), task_id)
            publish_task(p, task)
            p.execute()

    def backlog(self) -> dict[str, float]:
        """Unfinished tasks of each service (its in-flight set), for the metrics (read at each scrape)."""
        services = [s for s in TTL if s != "test"]
        with self.r.pipeline(transaction=False) as p:
            for service in services:
                p.zcard(self._key("inflight", service))
            return dict(zip(services, map(float, p.execute()), strict=True))

    def claim(self, service: str, lease_s: float, limit: int = 20, holder: str = "") -> builtins.list[Claimed]:
        """Unfinished tasks of `service` whose lease ran out, now leased to the caller (`holder`) for `lease_s`."""
        now = time.time()
        ids = [i.decode() for i in self._claim(keys=[self._key("inflight", service)],
                                               args=[now, now + lease_s, limit, holder, self._key("holder", ""),
                                                     TTL[service]])]
        claimed = []
        for task_id in ids:
            task = self.get(task_id)
            if task is None or task["status"] in FINAL:
                self.r.zrem(self._key("inflight", service), task_id)  # expired or finished meanwhile
                continue
            private = self.r.get(self._key("private", task_id))
            if private is None:  # nothing to resume from: close it rather than leave it queued forever
                self.update(task_id, task["user"], Status.FAILED, LOST)
                continue
            claimed.append(Claimed(task, text(private)))
        return claimed
