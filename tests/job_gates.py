"""Gated jobs: a test's job waits for a file that the test writes once it has seen what it is looking for, so no
test depends on how fast a job runs (after a minute the job goes on by itself)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any


class Gate:
    def __init__(self, site: Any, name: str) -> None:
        self.name = f"/home/alice/.{name}-gate-{uuid.uuid4().hex[:12]}"  # as the job sees it
        self.path: Path = site.path(self.name)  # as this host reaches it

    @property
    def wait_line(self) -> str:
        """The job script's line that waits for the gate."""
        return f"for i in $(seq 1 600); do [ -e {self.name} ] && break; sleep 0.1; done"

    def open(self) -> None:
        self.path.write_text("")
        self.path.chmod(0o644)


def remove_gates(site: Any, name: str) -> None:
    for gate in site.path("/home/alice").glob(f".{name}-gate-*"):
        gate.unlink(missing_ok=True)
