"""Parses `ls -l --quoting-style=c --time-style=+%Y-%m-%dT%H:%M:%S` output into the contract's entries."""

from __future__ import annotations

import re

ENTRY = re.compile(
    r"^(?P<type>[-dlcbps])(?P<permissions>[-rwxsStT]{9})[.+]?\s+\d+\s+(?P<user>\S+)\s+(?P<group>\S+)\s+"
    r"(?P<size>\d+|\d+,\s*\d+)\s+(?P<modified>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\s+(?P<rest>\".*)$"
)
C_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39, "?": 63}


def c_string(text: str, start: int = 0) -> tuple[str, int]:
    """Decode one C-quoted string beginning at text[start] == '"'; returns it and the index after it."""
    if text[start] != '"':
        raise ValueError("not a quoted name")
    out = bytearray()
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return out.decode("utf-8", errors="surrogateescape"), i + 1
        if c == "\\":
            nxt = text[i + 1]
            if nxt in "01234567":
                digits = re.match(r"[0-7]{1,3}", text[i + 1 :]).group(0)  # type: ignore[union-attr]
                out.append(int(digits, 8))
                i += 1 + len(digits)
                continue
            out.append(C_ESCAPES[nxt])
            i += 2
            continue
        out += c.encode()
        i += 1
    raise ValueError("unterminated quoted name")


def parse(output: str, root: str, recursive: bool) -> list[dict[str, str]] | list[str]:
    """Entries of `ls -l` (or names of the short format); with -R, names carry their sub-folder under `root`."""
    entries: list[dict[str, str]] = []
    plain: list[str] = []
    prefix = ""
    root = root.rstrip("/") or "/"
    for line in output.splitlines():
        if not line or line.startswith("total "):
            continue
        if recursive and line.startswith('"') and line.endswith(":"):
            directory = c_string(line)[0].rstrip("/") or "/"
            prefix = "" if directory == root else directory[len(root):].lstrip("/") + "/"
            continue
        m = ENTRY.match(line)
        if not m:
            if line.startswith('"'):  # the short format (notListing): names only
                plain.append(prefix + c_string(line)[0])
            continue
        name, end = c_string(m["rest"])
        target = ""
        if m["rest"][end:].startswith(" -> "):
            target, _ = c_string(m["rest"], end + 4)
        entries.append({
            "name": prefix + name,
            "type": m["type"],
            "link_target": target,
            "user": m["user"],
            "group": m["group"],
            "permissions": m["permissions"],
            "last_modified": m["modified"],
            "size": m["size"],
        })
    return entries or plain
