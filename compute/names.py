"""Slurm names from requests, checked before they reach a command: node lists (hostlist syntax) and accounts.

A value that passes can never read as an option (it cannot begin with `-`) and holds nothing Slurm would split
into a second item; anything else is a 400 that names the parameter.
"""

from __future__ import annotations

import re

from common import errors

# One host expression of Slurm's hostlist syntax: name characters and bracketed ranges, e.g. `nid[001-004,7]-gpu`.
_RANGES = r"\[[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*\]"
HOST = re.compile(rf"(?:[A-Za-z0-9_]|{_RANGES})(?:[A-Za-z0-9_.-]|{_RANGES}){{0,254}}", re.ASCII)
TOP_LEVEL_COMMA = re.compile(r",(?![^\[]*\])")  # a comma that is not inside brackets
ACCOUNT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,127}", re.ASCII)


def node_list(raw: str | list[str] | None, description: str = "Error on nodes operation") -> list[str]:
    """Host expressions (a comma-separated hostlist, or several), each checked; repeats dropped in order."""
    if not raw:
        return []
    parts = [raw] if isinstance(raw, str) else raw
    hosts = [host.strip() for part in parts for host in TOP_LEVEL_COMMA.split(part)]
    for host in hosts:
        if not HOST.fullmatch(host):
            raise errors.BadRequest(f"'nodes' has an invalid node name {host[:64]!r} (Slurm hostlist syntax: "
                                    "letters, digits, '_', '.', '-' and [ranges], not starting with '-')",
                                    description)
    return list(dict.fromkeys(hosts))


def account(value: str, description: str = "Invalid account") -> str:
    if not ACCOUNT.fullmatch(value):
        raise errors.BadRequest(f"'account' {value[:64]!r} is not a valid account name (letters, digits and "
                                "_ . + @ -, starting with a letter, digit or _)", description)
    return value
