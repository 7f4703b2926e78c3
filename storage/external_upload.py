"""External uploads (user -> cluster): what the client is told to do (status 111), watching for what it sends,
and the xfer job that pulls it onto the target (113 -> 114).

The client gets two URLs into the task's area, both signed with the area's client key: an exact one for the file
itself, and a prefix one for `segments/` (a file larger than one segment). Whatever else a client stores under
the segment prefix is never taken as a piece of the file (swift.Staging.staged keeps only the shapes below).
"""

from __future__ import annotations

import itertools
import logging
import shlex
import time
from typing import TYPE_CHECKING, Any

from common.errors import FirecrestError
from common.files import Remove, Rename
from common.task_status import Status
from common.values import integer

from . import external_jobs
from .swift import JOB_URL_TTL_S, MAX_SEGMENTS, SEGMENTS, MiB, Staging, StoredObject, segment_name
from .transfer_errors import Stalled, TransferFailed

if TYPE_CHECKING:
    from .external import ExternalTransfers, Transfer

log = logging.getLogger("firecrest.storage")

WATCH_INTERVAL_S = 0.25  # how soon an uploaded object is noticed (in the first seconds of the wait)
WATCH_MAX_INTERVAL_S = 2.0  # ... and at most this long after: a long wait is watched less often
WATCH_SLOWDOWN = 20  # the interval grows to 1/20 of the time waited so far
FEED_INTERVAL_S = 0.1  # how soon a pull job gets the next segment of an upload in progress
STALL_S = 120.0  # a pull job waits this long for the client's next segment

# The client's command: one PUT for a file up to one segment, else the segments and then the object itself,
# empty, saying how many segments there are (the service then writes the static large object's manifest).
# At most 1000 segments: a larger file gets larger segments (whole MiB: dd counts them).
# `sh` and `curl` only (dd for the pieces): pyfirecrest runs it with subprocess, without a shell of its own.
# $2 is the file's URL (query included); $3 and $4 the segments' URL prefix and query.
CLIENT_UPLOAD = (
    'f=$1; u=$2; s=$3; q=$4; seg=$5; size=$(($(wc -c < "$f"))) || exit 1; '
    'least=$(((size + 999) / 1000)); least=$(((least + 1048575) / 1048576 * 1048576)); '
    '[ "$least" -gt "$seg" ] && seg=$least; '
    'if [ "$size" -le "$seg" ]; then exec curl -fsS -X PUT -T "$f" "$u"; fi; '
    'mb=$((seg / 1048576)); n=$(((size + seg - 1) / seg)); i=0; '
    'while [ "$i" -lt "$n" ]; do '
    'dd if="$f" bs=1048576 skip=$((i * mb)) count="$mb" 2>/dev/null '
    '| curl -fsS -X PUT -T - "$s$(printf %08d "$i")?$q" || exit 1; i=$((i + 1)); '
    'done; '
    'exec curl -fsS -X PUT -H "X-Object-Meta-Segments: $n" -T /dev/null "$u"'
)


def offer(staging: Staging, task: str, source: str, name: str, segment: int) -> dict[str, Any]:
    """The `msg` of status 111: how to put the file into the task's area."""
    file_url = staging.temp_url(task, name, "PUT", public=True)
    segments_url, segments_query = staging.temp_url(task, SEGMENTS, "PUT", public=True, prefix=True).split("?", 1)
    command = shlex.join(["sh", "-c", CLIENT_UPLOAD, "firecrest-upload", source, file_url, segments_url,
                          segments_query, str(segment)])
    return {
        "parameters": {"method": "PUT", "url": file_url, "data": {}, "files": source, "json": {}, "headers": {},
                       "params": {}},
        "command": command,
        "large_files": {
            "segment_size": segment,
            "max_segments": MAX_SEGMENTS,
            "segment_url": f"{segments_url}{{index:08d}}?{segments_query}",
            "how": (f"A file larger than {segment} bytes: PUT its consecutive pieces of {segment} bytes (the last may "
                    "be shorter; larger pieces, in whole MiB, if that would make more than max_segments) to "
                    "segment_url with index 0, 1, ...; then PUT an empty body to the upload URL with the header "
                    "'X-Object-Meta-Segments: <number of pieces>'. The command does this by itself, and the "
                    "transfer to the cluster starts with the first piece."),
        },
    }


def arrived(staging: Staging, task: str, name: str, whole: bool) -> bool:
    """Whether there is something to pull: the file (`whole`: only that), or its first segment. A gone area
    counts too: the step that follows ends the task with the reason."""
    found = staging.staged(task, name)
    if found is None:
        return True
    file, segments = found
    return file is not None or (not whole and any(s.name == segment_name(0) for s in segments))


def pieces(staging: Staging, task: str, name: str) -> tuple[list[StoredObject], bool]:
    """The pieces uploaded so far, in order (segments 0, 1, ... without gaps), and whether that is all.

    The upload is complete once the file itself is there: the whole file (a single PUT), or an empty object
    announcing how many segments came before it; the segments then become a static large object.
    """
    found = staging.staged(task, name)
    if found is None:
        raise TransferFailed("The staging area is gone (its upload URL expired); start a new upload")
    file, segments = found
    contiguous = [s for i, s in itertools.takewhile(lambda p: p[1].name == segment_name(p[0]), enumerate(segments))]
    if file is None:
        return contiguous, False
    head = staging.head(task, name)
    if head is None:
        raise TransferFailed("The file is no longer in the staging area; start a new upload")
    if head.get("x-static-large-object", "").lower() == "true":  # manifest written by an earlier run
        return contiguous, True
    announced = head.get("x-object-meta-segments")
    if announced is None:
        if segments:
            raise TransferFailed("The upload sent segments, then the whole file without saying how many")
        return [StoredObject(name, int(head["content-length"]), head["etag"].strip('"'))], True
    if integer(announced) != len(segments) or not 0 < len(segments) <= MAX_SEGMENTS:  # user metadata: ASCII only
        raise TransferFailed(f"The upload announced {announced[:20]} segments, but {len(segments)} arrived")
    if len(contiguous) != len(segments):
        raise TransferFailed("The uploaded segments are not numbered 0, 1, 2, ... without gaps")
    staging.write_manifest(task, name, segments)
    return contiguous, True



class Uploads:
    """The upload steps of the storage engine's handler."""

    def __init__(self, transfers: ExternalTransfers) -> None:
        self.transfers = transfers
        self.engine, self.staging = transfers.engine, transfers.staging

    def offer(self, t: Transfer) -> None:
        """What the client needs to upload straight to Swift (status 111), into the task's own area: its URLs
        live as long as the contract's temp URLs, and the jobs that pull may start up to that late."""
        user, task, name = t.work.user, t.task_id, t.args["name"]
        storage = self.transfers.site.storage
        self.staging.open_area(task, storage.temp_url_ttl_s + JOB_URL_TTL_S)
        msg = offer(self.staging, task, t.args["source"], name, storage.segment_size_mb * MiB)
        data = {"user": user, "system_name": t.system, "target": t.args["target"], "source": name,
                "status": Status.UPLOAD_WAITING, "hash_id": task, "msg": msg}
        self.engine.progress(t, Status.UPLOAD_WAITING, data)
        t.waiting_since, t.next_check = time.monotonic(), 0.0
        log.info("task %s: waiting for %s", task, name)

    def pull(self, t: Transfer) -> None:
        """Pull the upload into a part file next to the target, verify it, rename it onto the target.

        A segmented upload is pulled while it arrives: the job starts with the first segment and gets each next
        one's URL on its input as soon as Swift has it. If the client stops sending for STALL_S, the job ends
        and the task waits for the complete upload instead (it holds no slot of the xfer partition meanwhile).
        """
        task, target, summary = t.task_id, t.args["target"], t.summary()
        pieces_now, complete = pieces(self.staging, task, t.args["name"])
        if complete:
            self.engine.progress(t, Status.UPLOAD_ARRIVED, summary)
        self.engine.progress(t, Status.UPLOAD_PULLING, summary)
        if t.resumed:
            self.transfers.cancel_earlier_jobs(t)
        part = external_jobs.part_path(target, task)
        try:
            fed = self._feed(t, part, pieces_now, complete)
            size = t.run(external_jobs.FileSize(part))
            if size != sum(p.size for p in fed):
                raise TransferFailed(f"Size mismatch: staged {sum(p.size for p in fed)} bytes, pulled {size}")
            t.run(Rename(part, target))
        except (FirecrestError, Stalled):
            try:
                t.run(Remove(part))
            except FirecrestError as e:
                log.warning("task %s: %s not removed: %s", task, part, e.error)
            raise
        self.transfers.finish(t, Status.UPLOAD_DONE, summary)

    def _feed(self, t: Transfer, part: str, found: list[StoredObject], complete: bool) -> list[StoredObject]:
        """Run the pull job, feeding it each piece's URL as the piece arrives; the pieces it pulled, checked."""
        task, name = t.task_id, t.args["name"]
        partition = self.transfers.site.systems[t.system].xfer_partition
        fed: list[StoredObject] = []
        with t.feed(external_jobs.Pull(partition, task, part)) as job:
            last_progress = time.monotonic()
            while True:
                for piece in found[len(fed):]:
                    url = self.staging.temp_url(task, piece.name, "GET", public=False, ttl_s=JOB_URL_TTL_S, job=True)
                    job.send(f"{url}\n".encode())
                    fed.append(piece)
                    last_progress = time.monotonic()
                if complete or not job.running or task not in self.engine.held:
                    break
                if time.monotonic() - last_progress > STALL_S:
                    break
                time.sleep(FEED_INTERVAL_S)
                found, complete = pieces(self.staging, task, name)
            out = job.finish(watch=self.transfers.job_watch(t))
        if not complete:
            raise Stalled(task)
        sums, expected = external_jobs.md5s(out), [p.etag for p in fed]
        if sums != expected:
            raise TransferFailed(f"Checksum mismatch: the staged file has md5 {expected}, the pulled {sums}")
        return fed

    def check_arrivals(self) -> None:
        """Look for the uploads that are due: each listing costs the object store a request, so an upload is
        looked for every WATCH_INTERVAL_S in the first seconds of its wait, then less and less often (at most
        WATCH_MAX_INTERVAL_S apart): a client that runs the command at once is noticed at once, and a
        forgotten upload costs little."""
        now = time.monotonic()
        due = [t for t in list(self.engine.held.values())
               if t.status == Status.UPLOAD_WAITING and not t.busy and t.next_check <= now]
        for t in due:
            waited = now - t.waiting_since
            t.next_check = now + min(WATCH_MAX_INTERVAL_S, max(WATCH_INTERVAL_S, waited / WATCH_SLOWDOWN))
            try:
                found = arrived(self.staging, t.task_id, t.args["name"], t.whole)
            except FirecrestError as e:
                log.warning("task %s: %s", t.task_id, e.error)
                continue
            if found:
                log.info("task %s: the upload has arrived", t.task_id)
                t.busy = True
                self.transfers.pool.submit(self.transfers.step, t)
