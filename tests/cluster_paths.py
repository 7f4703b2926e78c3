"""Paths on the cluster's shared filesystems, seen from the machine the tests run on.

On the native site the cluster's /home and /scratch are this machine's own. On the compose site they are named
volumes: a `MountedPath` prints (str, f-strings: what the API is given) as the cluster names it, and opens
(os.fspath: every file operation) where the volume is mounted here, so one test reads the same on both sites."""

from __future__ import annotations

from pathlib import Path, PosixPath
from typing import ClassVar


class MountedPath(PosixPath):
    mounts: ClassVar[dict[str, str]] = {}  # the cluster's root -> where this machine sees it

    def __fspath__(self) -> str:
        text = str(self)
        for root, local in self.mounts.items():
            if text == root or text.startswith(root + "/"):
                return local + text[len(root):]
        raise ValueError(f"{text} is on none of the cluster's filesystems mounted here ({sorted(self.mounts)})")


def cluster_path(path: str | Path) -> Path:
    """`path` (as the cluster names it) for the tests' file operations."""
    return MountedPath(path) if MountedPath.mounts else Path(path)
