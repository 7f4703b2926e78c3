"""External downloads (cluster -> user): an xfer job pushes the file into the task's area (116), then the client
gets a GET temp URL (117)."""

from __future__ import annotations

import math
import posixpath
from typing import TYPE_CHECKING

from common.task_status import Status

from . import external_jobs
from .swift import JOB_URL_TTL_S, MAX_SEGMENT_BYTES, MAX_SEGMENTS, MiB, segment_bytes, segment_name
from .transfer_errors import TransferFailed

if TYPE_CHECKING:
    from .external import ExternalTransfers, Transfer


def push(transfers: ExternalTransfers, t: Transfer) -> None:
    """Push the file into the task's area with the job's URLs; at 117 those end, the client's GET URL lives."""
    staging, storage = transfers.staging, transfers.site.storage
    task, source, size = t.task_id, t.args["source"], t.args["size"]
    name = posixpath.basename(source)
    # One object up to Swift's limit: read back fastest (a static large object's GET costs more); beyond it,
    # a static large object of segments as large as allowed.
    segment = segment_bytes(size, MAX_SEGMENT_BYTES)
    count = max(1, math.ceil(size / segment))
    if segment > MAX_SEGMENT_BYTES:
        raise TransferFailed(f"The file is larger than {MAX_SEGMENTS} segments of {MAX_SEGMENT_BYTES} bytes")
    transfers.engine.progress(t, Status.DOWNLOAD_PUSHING, t.summary())
    if t.resumed:
        transfers.cancel_earlier_jobs(t)
        staging.retire(task)
    staging.open_area(task, 2 * JOB_URL_TTL_S)  # until 117 (the job runs up to a day)
    names = [name] if count == 1 else [segment_name(i) for i in range(count)]
    urls = [staging.temp_url(task, n, "PUT", public=False, ttl_s=JOB_URL_TTL_S, job=True) for n in names]
    partition = transfers.site.systems[t.system].xfer_partition
    with t.feed(external_jobs.Push(partition, task, source, segment // MiB if count > 1 else 0)) as job:
        job.send("".join(u + "\n" for u in urls).encode())
        job.finish(watch=transfers.job_watch(t))
    stored = {o.name: o for o in staging.listing(task) or []}  # looked up by the names it should have
    sizes = [stored[n].size if n in stored else -1 for n in names]
    expected = [min(segment, size - i * segment) for i in range(count)] if count > 1 else [size]
    if sizes != expected:
        raise TransferFailed(f"The file changed or was not fully read: {sum(max(s, 0) for s in sizes)} bytes "
                             f"staged of {size}")
    if count > 1:
        staging.write_manifest(task, name, [stored[n] for n in names])
    url = staging.temp_url(task, name, "GET", public=True)
    staging.end_urls(task, client=False, expires_in=storage.temp_url_ttl_s + 60)
    transfers.finish(t, Status.DOWNLOAD_READY, {"url": url, **t.summary()})
