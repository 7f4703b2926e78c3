"""Idempotency keys in Redis: the first reply to a request sent with a key, replayed to its duplicates.

One key per (user, Idempotency-Key), `firecrest:idem:<user>:<sha256 of the key>`, a hash of:
  fingerprint  the sha256 the service computed over the request (method, path, machine, form, files);
  nonce        who holds the reservation while the first request is processed;
  reply        the first reply (JSON: status, body, headers) once recorded; absent while in flight.
A reservation lives LEASE_S (a service that dies mid-request frees the key by itself); a recorded reply lives
TTL_S (24 h) from the first request's end. Each step is one Lua script, so two processes never both get `new`.
Redis runs with AOF: keys survive a restart of the services and of Redis.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from .store import PREFIX, text

TTL_S = 86400
LEASE_S = 300
RETRY_AFTER_S = 1

# KEYS[1] the key; ARGV fingerprint, nonce, lease. A new reservation, or what is there: {fingerprint, reply}.
RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'nonce', ARGV[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  return {'new'}
end
return {'taken', redis.call('HGET', KEYS[1], 'fingerprint') or '', redis.call('HGET', KEYS[1], 'reply') or ''}
"""

# KEYS[1] the key; ARGV nonce, reply, ttl. Recorded only by the holder of the reservation (not one that lost it).
COMPLETE = """
if redis.call('HGET', KEYS[1], 'nonce') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'reply') == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'reply', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS[1] the key; ARGV nonce. The holder gives the key up (its request failed) unless a reply is recorded.
RELEASE = """
if redis.call('HGET', KEYS[1], 'nonce') == ARGV[1] and redis.call('HEXISTS', KEYS[1], 'reply') == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    """`new` (the caller holds `nonce` and does the work), `hit` (`reply` is the first one), `in_flight` (the first
    request is still processed) or `mismatch` (the key was used with another request)."""

    state: str
    nonce: str = ""
    reply: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": self.state}
        if self.state == "new":
            body["nonce"] = self.nonce
        elif self.state == "hit":
            body["reply"] = self.reply
        elif self.state == "in_flight":
            body["retry_after"] = RETRY_AFTER_S
        return body


class IdempotencyStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._reserve = client.register_script(RESERVE)
        self._complete = client.register_script(COMPLETE)
        self._release = client.register_script(RELEASE)

    @staticmethod
    def _key(user: str, key: str) -> str:
        # Hashed: the stored name never holds the client's text, whatever it is.
        return f"{PREFIX}idem:{user}:{hashlib.sha256(key.encode()).hexdigest()}"

    def reserve(self, user: str, key: str, fingerprint: str) -> Reservation:
        nonce = secrets.token_hex(16)
        found = self._reserve(keys=[self._key(user, key)], args=[fingerprint, nonce, LEASE_S])
        if text(found[0]) == "new":
            return Reservation("new", nonce=nonce)
        first, reply = text(found[1]), text(found[2])
        if first != fingerprint:
            return Reservation("mismatch")
        if not reply:
            return Reservation("in_flight")
        return Reservation("hit", reply=json.loads(reply))

    def complete(self, user: str, key: str, nonce: str, reply: dict[str, Any]) -> bool:
        """Record the first reply; False when the reservation was lost (its lease ran out) or already completed."""
        return bool(self._complete(keys=[self._key(user, key)], args=[nonce, json.dumps(reply), TTL_S]))

    def release(self, user: str, key: str, nonce: str) -> bool:
        return bool(self._release(keys=[self._key(user, key)], args=[nonce]))

    def ttl(self, user: str, key: str) -> int:
        """Seconds the key has left (-2: none), for tests and operators."""
        return int(self.r.ttl(self._key(user, key)))
