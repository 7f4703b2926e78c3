"""Paths of the file browser: '' is the user's home (the API reads relative paths from there), '/...' absolute."""

from __future__ import annotations

import posixpath


def api_path(path: str) -> str:
    """What the API gets: the home as '.', anything else as it is (the API checks and quotes it)."""
    return path or "."


def join(directory: str, name: str) -> str:
    if not directory:
        return name
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


def parent(path: str) -> str | None:
    """The folder above, or None at the top ('/' or the home)."""
    if path in ("", "/"):
        return None
    head = posixpath.dirname(path.rstrip("/"))
    return head if head or path.startswith("/") else ""


def name_of(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or path


def crumbs(path: str) -> list[tuple[str, str]]:
    """(label, path) from the top down to `path`, for the navigation line."""
    if path.startswith("/"):
        out = [("/", "/")]
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            out.append((part, "/" + "/".join(parts[: i + 1])))
        return out
    out = [("~", "")]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        out.append((part, "/".join(parts[: i + 1])))
    return out
