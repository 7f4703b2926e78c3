"""Event streams in Redis: what the tasks service publishes and serves as text/event-stream.

Keys (all prefixed `firecrest:events:`):
  tasks:<user>            a stream of the user's task changes (create, update, delete), written in the same
                          transaction as the change (tasks/store.py), capped at about MAXLEN entries;
  jobs:<system>/<user>    a stream of state changes of the user's jobs on a system, written by compute processes
                          through the internal API (compare-and-publish: one entry per change, never two);
  snapshot:<system>/<user> a hash jobid -> the job's last published state (what a fresh stream starts with);
  watched                 a sorted set of `<system>/<user>` with listeners, by when their next poll is due;
  listeners:<system>/<user>  exists while a stream of those jobs is open (renewed by every stream's heartbeat);
  token:<system>/<user>   the longest-lived token of those listeners, sealed (the poller runs Slurm as the user);
  holder:<system>/<user>  the compute process polling them now: a publish by any other is refused;
  slots:<user>            a sorted set of the user's open streams by lease deadline (the per-user limit, counted
                          across every process; a killed process's slots run out with their lease).

A stream id (`1796544417123-0`) is the event id: a client that reconnects with `Last-Event-ID` reads on from it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "firecrest:events:"
MAXLEN = 1000  # entries kept per stream (approximately: Redis trims whole nodes)
STREAM_TTL = 7 * 86400  # a stream nobody writes to for this long is dropped
MAX_DATA = 16384  # a task event carries the task's data up to this size; larger data is left to GET /tasks/<id>
SLOT_LEASE_S = 45.0  # an open stream renews its slot at every heartbeat (at most HEARTBEAT_S apart)
LISTENER_TTL_S = 45
STREAM_ID = re.compile(r"[0-9]{1,15}-[0-9]{1,10}", re.ASCII)

# Take up to ARGV[3] watched (system, user) whose poll is due; those without listeners leave the set. Each taken one
# is due again at ARGV[2] (the lease: a process that dies while polling lets another take it) and held by ARGV[4].
CLAIM = """
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  if redis.call('EXISTS', ARGV[5] .. 'listeners:' .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
  else
    redis.call('ZADD', KEYS[1], ARGV[2], m)
    redis.call('SET', ARGV[5] .. 'holder:' .. m, ARGV[4], 'EX', tonumber(ARGV[6]))
    table.insert(out, m)
  end
end
return out
"""

# Compare and publish: each job whose state differs from the snapshot is written there and added to the stream;
# a final state is never followed by an earlier one. Refused (-1) unless ARGV[1] still holds the poll.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local added, n = 0, tonumber(ARGV[6])
for i = 0, n - 1 do
  local id, new = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local old = redis.call('HGET', KEYS[2], id)
  if old ~= new and not (old and cjson.decode(old).final and not cjson.decode(new).final) then
    redis.call('HSET', KEYS[2], id, new)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'data', new)
    added = added + 1
  end
end
for i = 7 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if added > 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
redis.call('ZADD', KEYS[4], 'XX', ARGV[5], ARGV[4])
return added
"""

# Take a slot among ARGV[3] for the user (expired leases dropped first); else the seconds until one frees.
SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2]}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return {1, ARGV[2]}
"""


def key(kind: str, name: str) -> str:
    return f"{PREFIX}{kind}:{name}"


def task_stream(user: str) -> str:
    return key("tasks", user)


def member(system: str, user: str) -> str:
    return f"{system}/{user}"


def split_member(value: str) -> tuple[str, str]:
    system, _, user = value.rpartition("/")  # a user name has no '/'
    return system, user


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def task_event(task: dict[str, Any]) -> str:
    """A task as its event carries it: the public fields and its URL; data too large is left out (flagged)."""
    shown = {**task, "task_url": f"/tasks/{task['task_id']}"}
    data = json.dumps(shown)
    if len(data) > MAX_DATA:
        shown.update(data=None, data_omitted=True)
        data = json.dumps(shown)
    return data


def publish_task(pipe: redis.client.Pipeline, task: dict[str, Any]) -> None:
    """Queue the task's event on `pipe` (the store's transaction that changes the task: both or neither)."""
    stream = task_stream(task["user"])
    pipe.xadd(stream, {"data": task_event(task)}, maxlen=MAXLEN, approximate=True)
    pipe.expire(stream, STREAM_TTL)


class TooManyStreams(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Watch:
    """A (system, user) whose jobs a compute process polls now, with what it needs for that."""

    system: str
    user: str
    sealed_token: str
    known: dict[str, dict[str, Any]]  # jobid -> the job's last published state


class EventStore:
    def __init__(self, client: redis.Redis, blocking: redis.Redis) -> None:
        self.r = client
        self.blocking = blocking  # its socket timeout exceeds the longest XREAD BLOCK
        self._claim = client.register_script(CLAIM)
        self._publish = client.register_script(PUBLISH)
        self._slot = client.register_script(SLOT)

    @classmethod
    def beside(cls, client: redis.Redis, block_s: float) -> EventStore:
        """The events in the Redis of `client` (the task store's), with a second pool for blocking reads."""
        pool = client.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": block_s + 10}
        return cls(client, redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class,
                                                                             **kwargs)))

    # -- reading ---------------------------------------------------------------------------------------------------

    def tail(self, stream: str) -> str:
        """The id of the stream's newest entry ("0-0" when empty): reading on from it misses nothing later."""
        newest = self.r.xrevrange(stream, count=1)
        return text(newest[0][0]) if newest else "0-0"

    def resumable(self, stream: str, last_id: str) -> bool:
        """Whether everything after `last_id` is still held. Trimming removes the oldest entries and Redis does not
        say which: an id older than the first entry kept is only known safe if nothing was ever removed."""
        try:
            info = self.r.xinfo_stream(stream)
        except redis.ResponseError:  # no such stream: it expired (or never had an entry)
            return last_id == "0-0"
        if compare_ids(last_id, text(info.get("max-deleted-entry-id") or "0-0")) < 0:  # XDEL, should it be used
            return False
        if int(info.get("entries-added", 0)) == int(info.get("length", 0)):
            return True
        first = info.get("first-entry")
        oldest = text(first[0]) if first else text(info.get("last-generated-id") or "0-0")
        return compare_ids(last_id, oldest) >= 0

    def read(self, stream: str, after: str, block_s: float) -> list[tuple[str, str]]:
        """Entries after `after`, waiting up to `block_s` for the first: (id, data)."""
        found: Any = self.blocking.xread({stream: after}, count=100, block=max(1, int(block_s * 1000)))
        return [(text(entry_id), text(fields.get(b"data", b"{}"))) for _, entries in found or []
                for entry_id, fields in entries]

    # -- the per-user limit on open streams --------------------------------------------------------------------

    def take_slot(self, user: str, limit: int) -> str:
        slot, now = secrets.token_hex(8), time.time()
        answer: list[Any] = self._slot(keys=[key("slots", user)],
                                       args=[now, now + SLOT_LEASE_S, limit, slot, SLOT_LEASE_S * 2])
        taken, until = answer
        if not int(taken):
            raise TooManyStreams(max(1, int(float(until) - now + 1)))
        return slot

    def renew_slot(self, user: str, slot: str) -> None:
        self.r.zadd(key("slots", user), {slot: time.time() + SLOT_LEASE_S}, xx=True)

    def free_slot(self, user: str, slot: str) -> None:
        self.r.zrem(key("slots", user), slot)

    # -- jobs: listeners, polls, publishing ----------------------------------------------------------------------

    def watch(self, system: str, user: str, sealed_token: str, token_ttl_s: int, opening: bool = False) -> None:
        """A stream of the user's jobs on `system` is open (called again at every heartbeat): their poll goes on,
        with the longest-lived token among the listeners. A stream `opening` makes the poll due now (it may have
        waited for a token), a heartbeat leaves its time alone."""
        m = member(system, user)
        token_key = key("token", m)
        with self.r.pipeline(transaction=False) as p:
            p.set(key("listeners", m), "1", ex=LISTENER_TTL_S)
            p.zadd(key("watched", "all"), {m: time.time()}, **({"lt": True} if opening else {"nx": True}))
            p.ttl(token_key)
            left = p.execute()[2]
        if token_ttl_s > 0 and int(left) < token_ttl_s:
            self.r.set(token_key, sealed_token, ex=token_ttl_s)

    def claim(self, holder: str, lease_s: float, limit: int) -> list[Watch]:
        now = time.time()
        claimed: list[Any] = self._claim(keys=[key("watched", "all")],
                                         args=[now, now + lease_s, limit, holder, PREFIX, int(lease_s) + 1])
        members = [text(m) for m in claimed]
        watches = []
        for m in members:
            sealed = self.r.get(key("token", m))
            if sealed is None:  # every listener's token expired: their streams end too
                continue
            known = {text(k): json.loads(v) for k, v in self.r.hgetall(key("snapshot", m)).items()}
            watches.append(Watch(*split_member(m), text(sealed), known))
        return watches

    def publish_jobs(self, system: str, user: str, holder: str, jobs: dict[str, dict[str, Any]],
                     gone: list[str], next_poll_s: float) -> int:
        """Compare and publish the jobs' states; -1 when `holder` no longer holds the poll."""
        m = member(system, user)
        pairs = [word for jobid, job in jobs.items() for word in (jobid, json.dumps(job, sort_keys=True))]
        added: Any = self._publish(
            keys=[key("holder", m), key("snapshot", m), key("jobs", m), key("watched", "all")],
            args=[holder, MAXLEN, STREAM_TTL, m, time.time() + next_poll_s, len(jobs), *pairs, *gone])
        return int(added)

    def snapshot(self, system: str, user: str) -> list[dict[str, Any]]:
        raw = self.r.hgetall(key("snapshot", member(system, user)))
        return sorted((json.loads(v) for v in raw.values()), key=lambda job: job_sort_key(job.get("jobid", "")))


def job_stream(system: str, user: str) -> str:
    return key("jobs", member(system, user))


def compare_ids(a: str, b: str) -> int:
    left, right = stream_id_tuple(a), stream_id_tuple(b)
    return (left > right) - (left < right)


def stream_id_tuple(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def job_sort_key(jobid: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"[0-9]+", jobid))


Selector = Callable[[dict[str, Any]], bool]
