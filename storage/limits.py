"""A bound on each user's external transfers in flight.

Each one costs the site something while it lasts: a waiting upload is watched in the object store, a transfer
holds a thread of the service's pool and an xfer job. One user must not be able to take it all, so a user with
`storage.max_transfers_per_user` transfers in flight gets 429 with Retry-After and the reason, at once.

The count comes from the tasks service (shared by every storage process), so the bound holds across processes;
two requests of one user racing in two processes may both pass (one over the bound, never more per process).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from common.auth import Identity
from common.errors import TooManyRequests
from common.task_status import Status
from common.tasks_client import TasksClient

# An external transfer's unfinished statuses.
IN_FLIGHT = frozenset({Status.QUEUED, Status.UPLOAD_OFFER_PENDING, Status.UPLOAD_WAITING, Status.UPLOAD_ARRIVED,
                       Status.UPLOAD_PULLING, Status.DOWNLOAD_PUSHING})
RETRY_AFTER_S = 30


class Admission:
    def __init__(self, tasks: TasksClient, limit: int) -> None:
        self.tasks, self.limit = tasks, limit
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    @contextmanager
    def admit(self, user: Identity) -> Iterator[None]:
        """Around a transfer's request: 429 at once if the user has too many in flight, else the request goes
        on (its checks, the task's creation) with this user's other requests in this process held back."""
        with self._guard:
            lock = self._locks[user.username]
        with lock:
            self.check(user)
            yield

    def check(self, user: Identity) -> None:
        tasks = self.tasks.unfinished(user.token, "storage").values()
        count = sum(t.get("status") in IN_FLIGHT for t in tasks)
        if count >= self.limit:
            raise TooManyRequests(
                f"{count} of your external transfers are in flight, the most allowed at once ({self.limit}): "
                "finish an upload, wait for a transfer to end, or invalidate one "
                "(POST /storage/xfer-external/invalidate), then try again",
                "Too many transfers in flight", retry_after_s=RETRY_AFTER_S)
