"""The staging area in Swift: one container per transfer task, whose own temp URL keys sign every URL to it.

Users and transfer jobs never hold Swift credentials: they get temp URLs. Each task's container carries two keys,
derived from the service's Swift credential and the container's name: the client's (an upload's PUT URLs, a
download's GET URL) and the job's (the URLs the transfer job reads or writes). Removing a key ends every URL
signed with it at once, whatever its expiry: an upload URL stops accepting objects when its task ends, a
download's job URLs end at 117 while its GET URL lives on. No account-wide key is used.

Layout (container `transfer-<task id>`):
    <name>                  the file (or the static large object's manifest)
    segments/<00000000>     the segments of a file larger than one segment

Names that come back from Swift are the client's (a prefix URL accepts any name under its prefix): only names of
these shapes are ever used as data. Any other is only deleted, by a bulk delete whose body carries each name
percent-quoted: an HTTP library never gets the chance to resolve a `..` in it into another object's path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from swiftclient.client import ClientException, Connection
from swiftclient.utils import generate_temp_url

from common.config import StorageConfig
from common.errors import FirecrestError
from common.values import integer

SEGMENTS = "segments/"
JOB_URL_TTL_S = 86400  # the URLs a transfer job uses (it starts at once; it is bounded by its time limit)
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments
MiB = 1024 * 1024
RAISE = object()  # Staging._call: a 404 is an error too
MAX_SEGMENT_BYTES = 5 * 1024 * MiB  # Swift's default max_file_size (minus its 2 spare bytes)
AREA_PREFIX = "transfer-"
TASK_ID = re.compile(r"[A-Za-z0-9]{1,64}")
SEGMENT = re.compile(r"segments/[0-9]{8}")
CLIENT_KEY, JOB_KEY = "Temp-URL-Key", "Temp-URL-Key-2"  # the two container keys Swift's tempurl honours
EXPIRES = "Firecrest-Expires"  # container metadata: when the sweep may remove the area (unix time)
BULK_BATCH = 1000  # names per bulk delete (Swift's limit is 10,000)


class StagingError(FirecrestError):
    """The object store failed or refused: the task ends with this reason."""


@dataclass(frozen=True)
class StoredObject:
    name: str  # within the task's container
    size: int
    etag: str  # md5 of the content (of a plain object)


def segment_name(index: int) -> str:
    return f"{SEGMENTS}{index:08d}"


def segment_bytes(size: int, configured: int) -> int:
    """The segment size for a file: the configured one, or larger (whole MiB) to need at most MAX_SEGMENTS."""
    least = -(-size // MAX_SEGMENTS)
    return max(configured, -(-least // MiB) * MiB)


def area(task: str) -> str:
    """The container of a task (task ids are the tasks service's: letters and digits)."""
    if not TASK_ID.fullmatch(task):
        raise StagingError(f"Not a task id: {task[:70]!r}", "Object storage error")
    return AREA_PREFIX + task


def area_task(container: str) -> str | None:
    task = container[len(AREA_PREFIX):]
    return task if container.startswith(AREA_PREFIX) and TASK_ID.fullmatch(task) else None


class Staging:
    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._local = threading.local()

    # -- connection ----------------------------------------------------------------------------------------

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:  # swiftclient's Connection is not thread-safe: one per thread
            overrides = {"object_storage_url": self.config.account_url} if self.config.account_url else {}
            conn = self._local.conn = Connection(authurl=self.config.auth_url, user=self.config.user,
                                                 key=self.config.key, retries=3, timeout=30, os_options=overrides)
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

    def url_key(self, task: str, job: bool = False) -> str:
        """The key of the task's client URLs (or of its job's): an HMAC of the container's name under the
        service's Swift credential, so every process derives the same one and nobody else can."""
        if not self.config.key:
            raise StagingError("The storage service has no object store credential", "Object storage error")
        label = f"firecrest temp url key\0{'job' if job else 'client'}\0{area(task)}"
        return hmac.new(self.config.key.encode(), label.encode(), hashlib.sha256).hexdigest()

    # -- a task's area ---------------------------------------------------------------------------------------

    def open_area(self, task: str, lifetime_s: float) -> None:
        """Create the task's container with both keys (again: the same keys, a later expiry)."""
        headers = {f"X-Container-Meta-{CLIENT_KEY}": self.url_key(task),
                   f"X-Container-Meta-{JOB_KEY}": self.url_key(task, job=True),
                   f"X-Container-Meta-{EXPIRES}": str(int(time.time() + lifetime_s))}
        self._call("create container", self._conn().put_container, area(task), headers=headers)

    def end_urls(self, task: str, client: bool = True, job: bool = True, expires_in: float | None = None) -> bool:
        """End every URL signed with the client's key and/or the job's (and give the area a new expiry);
        False when the area is gone already."""
        headers = {f"X-Remove-Container-Meta-{key}": "x" for key, chosen in ((CLIENT_KEY, client), (JOB_KEY, job))
                   if chosen}
        if expires_in is not None:
            headers[f"X-Container-Meta-{EXPIRES}"] = str(int(time.time() + expires_in))
        return self._call("end URLs", self._conn().post_container, area(task), headers, missing=False) is None

    def retire(self, task: str, keep_get_url: bool = False) -> int:
        """End the task's area: its keys first (every URL to it fails from then on, so nothing new arrives), then
        every object, whatever its name, and the container. Returns how many objects there were. A PUT that
        was let in before the keys went may still land meanwhile: it is deleted in the next round, or by the
        sweep (the area keeps its expiry). `keep_get_url` (a staged download's, whose client key signs nothing
        but its GET URL): that key and the empty container stay until the sweep, so the URL answers 404."""
        if not self.end_urls(task, client=not keep_get_url):
            return 0
        removed = 0
        for _ in range(3):
            found = self.listing(task)
            if found is None:
                break
            removed += len(found)
            if self._bulk_delete(area(task), [o.name for o in found], container_too=not keep_get_url):
                break
        return removed

    def _bulk_delete(self, container: str, names: list[str], container_too: bool = False) -> bool:
        """Delete exactly these objects (and then the container): one line per object, percent-quoted, which
        Swift unquotes into the very name; a swiftclient DELETE would let `..` segments be resolved away.
        Returns False when the container was not empty any more (something arrived meanwhile)."""
        lines = [quote(f"/{container}/{name}", safe="/") for name in names]
        if container_too:
            lines.append(quote(f"/{container}", safe="/"))  # Swift deletes the objects first, then containers
        emptied = True
        for start in range(0, len(lines), BULK_BATCH):
            batch = "\n".join(lines[start:start + BULK_BATCH])
            _, body = self._call("delete", self._conn().post_account, {"Content-Type": "text/plain",
                                 "Accept": "application/json"}, query_string="bulk-delete", data=batch.encode())
            result = json.loads(body or b"{}")
            errors = [e for e in result.get("Errors", []) if not str(e[-1]).startswith(("404", "409"))]
            emptied = emptied and not any(str(e[-1]).startswith("409") for e in result.get("Errors", []))
            if errors or not str(result.get("Response Status", "200")).startswith(("200", "400")):
                raise StagingError(f"Object storage error (delete): {result.get('Response Status')} "
                                   f"{str(errors)[:300]}", "Object storage error")
        return emptied

    # -- objects -------------------------------------------------------------------------------------------

    def listing(self, task: str) -> list[StoredObject] | None:
        """Every object of the task's area, names as the client wrote them (untrusted); None: no area."""
        _, found = self._call("list", self._conn().get_container, area(task), full_listing=True, missing=(None, None))
        if found is None:
            return None
        return [StoredObject(o["name"], int(o["bytes"]), o["hash"]) for o in found]

    def staged(self, task: str, name: str) -> tuple[StoredObject | None, list[StoredObject]] | None:
        """The file `name` (if there) and the objects named like segments, in name order; None: no area.
        Objects of any other name are ignored (and removed with the area)."""
        found = self.listing(task)
        if found is None:
            return None
        return next((o for o in found if o.name == name), None), [o for o in found if SEGMENT.fullmatch(o.name)]

    def head(self, task: str, name: str) -> dict[str, str] | None:
        return self._call("read object", self._conn().head_object, area(task), name, missing=None)

    def write_manifest(self, task: str, name: str, segments: list[StoredObject]) -> None:
        """Make `name` the static large object of `segments` (Swift checks each one's size and etag)."""
        if not all(SEGMENT.fullmatch(s.name) for s in segments):
            raise StagingError("Not a segment name", "Object storage error")
        manifest = [{"path": f"/{area(task)}/{s.name}", "etag": s.etag, "size_bytes": s.size} for s in segments]
        self._call("write manifest", self._conn().put_object, area(task), name, json.dumps(manifest),
                   query_string="multipart-manifest=put")

    # -- the sweep -------------------------------------------------------------------------------------------

    def sweep(self, legacy_max_age_s: float) -> int:
        """Remove what no URL can reach any more: task areas past their expiry, whatever their objects are
        called; in any other container (the per-user layout of earlier versions), objects older than
        `legacy_max_age_s`. Returns how many objects went."""
        _, containers = self._call("list containers", self._conn().get_account, full_listing=True)
        removed = 0
        for container in containers:
            name = container["name"]
            task = area_task(name)
            if task is None:
                removed += self.sweep_legacy(name, legacy_max_age_s)
                continue
            head = self._call("read container", self._conn().head_container, name, missing=None)
            expires = (head or {}).get(f"x-container-meta-{EXPIRES.lower()}", "")
            if head is not None and not (integer(expires) or 0) > time.time():
                removed += self.retire(task)
        return removed

    def sweep_legacy(self, container: str, max_age_s: float) -> int:
        """Delete the objects of `container` older than `max_age_s`, whatever they are called."""
        _, found = self._call("list", self._conn().get_container, container, full_listing=True, missing=(None, []))
        cutoff = datetime.now(UTC).timestamp() - max_age_s
        old = [o["name"] for o in found
               if datetime.fromisoformat(o["last_modified"]).replace(tzinfo=UTC).timestamp() < cutoff]
        if old:
            self._bulk_delete(container, old)
        return len(old)

    # -- temp URLs -----------------------------------------------------------------------------------------

    def temp_url(self, task: str, name: str, method: str, public: bool, prefix: bool = False,
                 ttl_s: int | None = None, job: bool = False) -> str:
        """A URL for one object of the task's area, or (`prefix`) for every name starting with `name`; signed
        with the client's key, or the job's."""
        path = f"{self._account_path()}/{area(task)}/{name}"
        ttl = self.config.temp_url_ttl_s if ttl_s is None else ttl_s
        signed = generate_temp_url(path, ttl, self.url_key(task, job), method, prefix=prefix)
        query = signed[len(path) + 1 :]  # after "<path>?": the path itself may hold a "?"
        if prefix and name:  # swiftclient leaves the prefix unquoted in the query
            query = query.replace(f"temp_url_prefix={name}", f"temp_url_prefix={quote(name)}")
        base = self.config.public_url if public else self.config.internal_url
        return f"{base.rstrip('/')}{quote(path)}?{query}"

