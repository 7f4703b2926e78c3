"""Job directories made ahead of the submissions that will use them.

An uploaded script runs in a directory of its own, `<base>/<user>/firecrest/<task id>`, which must exist before the
job starts. Made in the submission's own path, it costs a login-node command before sbatch. So the command that
stores a submission's script also makes the directories of the user's next submissions (task ids chosen here, as
the tasks service allows), and such a next submission needs nothing before sbatch: the script goes to sbatch on its
standard input while its copy is written into the directory at the same time.

What is ready is known to this process only: when a process stops, at most KEEP empty directories per user and
system stay behind it.
"""

from __future__ import annotations

import secrets
import threading

KEEP = 2


class Workdirs:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, str], list[str]] = {}
        self._planned: dict[tuple[str, str], int] = {}

    def take(self, system: str, user: str) -> str | None:
        """The task id of a directory made ahead for `user` on `system` (now the caller's), or None."""
        with self._lock:
            ready = self._ready.get((system, user))
            return ready.pop() if ready else None

    def plan(self, system: str, user: str) -> list[str]:
        """Fresh task ids whose directories the caller's next write should make, so that KEEP are ready (those
        being made by other submissions count); report the outcome with `made`."""
        key = (system, user)
        with self._lock:
            wanted = self.keep - len(self._ready.get(key, [])) - self._planned.get(key, 0)
            if wanted <= 0:
                return []
            self._planned[key] = self._planned.get(key, 0) + wanted
        return [secrets.token_hex(16) for _ in range(wanted)]

    def made(self, system: str, user: str, ids: list[str], ok: bool) -> None:
        """The directories of `ids` (from `plan`) exist now (`ok`), or the write failed."""
        if not ids:
            return
        key = (system, user)
        with self._lock:
            self._planned[key] -= len(ids)
            if ok:
                self._ready.setdefault(key, []).extend(ids)
