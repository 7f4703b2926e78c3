"""Slurm names from compute's requests, checked before they reach a command: accounts here; node lists by the
hostlist check of the command that takes them (common/slurm/resources.py), which the routes use too.

A value that passes can never read as an option (it cannot begin with `-`) and holds nothing Slurm would split
into a second item; anything else is a 400 that names the parameter.
"""

from __future__ import annotations

import re

from common import errors
from common.slurm.resources import node_list

__all__ = ["ACCOUNT", "account", "node_list"]

ACCOUNT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,127}", re.ASCII)


def account(value: str, description: str = "Invalid account") -> str:
    if not ACCOUNT.fullmatch(value):
        raise errors.BadRequest(f"'account' {value[:64]!r} is not a valid account name (letters, digits and "
                                "_ . + @ -, starting with a letter, digit or _)", description)
    return value
