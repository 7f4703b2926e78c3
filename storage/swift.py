"""The staging area in Swift: one container per user, one prefix per task, temp URLs signed here.

Users and transfer jobs never hold Swift credentials: they get temp URLs, signed with the account's temp URL key,
which this module reads with the service's own credentials and never hands out. A URL is always built from the
caller's username and one of the caller's task ids, so no user can be given a URL into another's objects.

Layout of a task's objects (container = the username):
    <task>/<name>                 the file (or the static large object's manifest)
    <task>/segments/<00000000>    the segments of a file larger than one segment
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from swiftclient.client import ClientException, Connection
from swiftclient.utils import generate_temp_url

from common.config import StorageConfig, site
from common.errors import FirecrestError

SEGMENTS = "segments/"
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments
MiB = 1024 * 1024
RAISE = object()  # Staging._call: a 404 is an error too
MAX_SEGMENT_BYTES = 5 * 1024 * MiB  # Swift's default max_file_size (minus its 2 spare bytes)


class StagingError(FirecrestError):
    """The object store failed or refused: the task ends with this reason."""


@dataclass(frozen=True)
class StoredObject:
    name: str  # relative to the task's prefix
    size: int
    etag: str  # md5 of the content (of a plain object)


def segment_name(index: int) -> str:
    return f"{SEGMENTS}{index:08d}"


def segment_bytes(size: int, configured: int) -> int:
    """The segment size for a file: the configured one, or larger (whole MiB) to need at most MAX_SEGMENTS."""
    least = -(-size // MAX_SEGMENTS)
    return max(configured, -(-least // MiB) * MiB)


class Staging:
    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._containers: set[str] = set()
        self._key: str | None = None

    # -- connection ----------------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:  # swiftclient's Connection is not thread-safe: one per thread
            conn = self._local.conn = Connection(authurl=self.config.auth_url, user=self.config.user,
                                                 key=self.config.key, retries=3, timeout=30)
        return conn

    def _call(self, what: str, fn: Any, *args: Any, missing: Any = RAISE, **kwargs: Any) -> Any:
        """One Swift call; its failures as StagingError, except a 404 when a `missing` value is given."""
        try:
            return fn(*args, **kwargs)
        except ClientException as e:
            if e.http_status == 404 and missing is not RAISE:
                return missing
            raise StagingError(f"Object storage error ({what}): {e.http_status or ''} {e.msg}".strip(),
                               "Object storage error") from e
        except Exception as e:  # connection refused, timeouts: the store is down
            raise StagingError(f"Object storage unreachable ({what}): {e.__class__.__name__}",
                               "Object storage error") from e

    def _account_path(self) -> str:
        conn = self._conn()
        if not conn.url:
            self._call("authenticate", conn.get_auth)
        return urlsplit(conn.url).path  # /v1/AUTH_<account>

    def temp_url_key(self) -> str:
        if self._key is None:
            headers = self._call("read account", self._conn().head_account)
            key = headers.get("x-account-meta-temp-url-key")
            if not key:
                raise StagingError("The object store has no temp URL key", "Object storage error")
            self._key = key
        return self._key

    # -- containers and objects ----------------------------------------------------------------------------

    def ensure_container(self, user: str) -> None:
        if user not in self._containers:
            self._call("create container", self._conn().put_container, user)
            self._containers.add(user)

    def head(self, user: str, task: str, name: str) -> dict[str, str] | None:
        return self._call("read object", self._conn().head_object, user, f"{task}/{name}", missing=None)

    def objects(self, user: str, task: str) -> list[StoredObject]:
        """The task's objects (names relative to the task), in name order."""
        _, listing = self._call("list", self._conn().get_container, user, prefix=f"{task}/", full_listing=True,
                                missing=(None, []))
        return [StoredObject(o["name"][len(task) + 1:], int(o["bytes"]), o["hash"]) for o in listing]

    def write_manifest(self, user: str, task: str, name: str, segments: list[StoredObject], ttl_s: int) -> None:
        """Make <task>/<name> the static large object of `segments` (Swift checks each one's size and etag)."""
        manifest = [{"path": f"/{user}/{task}/{s.name}", "etag": s.etag, "size_bytes": s.size} for s in segments]
        self._call("write manifest", self._conn().put_object, user, f"{task}/{name}", json.dumps(manifest),
                   query_string="multipart-manifest=put", headers={"X-Delete-After": str(ttl_s)})

    def expire(self, user: str, task: str, names: list[str], ttl_s: int) -> None:
        for name in names:
            self._call("set expiry", self._conn().post_object, user, f"{task}/{name}",
                       headers={"X-Delete-After": str(ttl_s)})

    def remove(self, user: str, task: str) -> int:
        """Delete every object of the task (segments included); returns how many there were."""
        found = self.objects(user, task)
        for obj in found:
            self._call("delete", self._conn().delete_object, user, f"{task}/{obj.name}", missing=None)
        return len(found)

    def sweep(self, max_age_s: float) -> int:
        """Delete objects older than `max_age_s` in every user's container: what a client uploaded with a URL of
        a task that has since ended (failed, invalidated, never completed) is not kept forever."""
        cutoff = datetime.now(UTC) - timedelta(seconds=max_age_s)
        _, containers = self._call("list containers", self._conn().get_account, full_listing=True)
        removed = 0
        for container in containers:
            _, listing = self._call("list", self._conn().get_container, container["name"], full_listing=True)
            for obj in listing:
                if datetime.fromisoformat(obj["last_modified"]).replace(tzinfo=UTC) < cutoff:
                    self._call("sweep", self._conn().delete_object, container["name"], obj["name"], missing=None)
                    removed += 1
        return removed

    # -- temp URLs -----------------------------------------------------------------------------------------

    def temp_url(self, user: str, task: str, name: str, method: str, public: bool, prefix: bool = False,
                 ttl_s: int | None = None) -> str:
        """A signed URL for one object of the task, or (`prefix`) for every name under `<task>/<name>`."""
        path = f"{self._account_path()}/{user}/{task}/{name}"
        ttl = self.config.temp_url_ttl_s if ttl_s is None else ttl_s
        signed = generate_temp_url(path, ttl, self.temp_url_key(), method, prefix=prefix)
        query = signed[len(path) + 1 :]  # after "<path>?": the path itself may hold a "?"
        if prefix:  # swiftclient leaves the prefix unquoted in the query
            query = query.replace(f"temp_url_prefix={task}/{name}", f"temp_url_prefix={quote(f'{task}/{name}')}")
        base = self.config.public_url if public else self.config.internal_url
        return f"{base.rstrip('/')}{quote(path)}?{query}"


@functools.cache
def staging() -> Staging:
    return Staging(site().storage)
