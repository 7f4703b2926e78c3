"""Request parameters as the contract sends them: the query string for GET, form fields otherwise.

Every user value reaches the cluster only as one quoted word (common/commands.py), so quotes, `$`, `;` or
spaces are taken literally; what is refused here is what no path can hold or no tool should get: control
characters (newlines among them), empty values and oversized ones.
"""

from __future__ import annotations

import re

from flask import request

from .errors import BadRequest

MAX_LENGTH = 4096  # PATH_MAX
# A Slurm job id as squeue/sacct print it (array and het-job forms too); ASCII: `\d` would take other digits.
JOB_ID = re.compile(r"\d+(\+\d+|_\d+|_\[\d+-\d+\])?", re.ASCII)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TRUE = ("true", "1", "yes", "on")


def _source() -> dict:
    return request.args if request.method == "GET" else request.form


def text(name: str, operation: str, required: bool = True, default: str = "") -> str:
    value = _source().get(name)
    fail = f"Error on {operation} operation"
    if value is None:
        if required:
            raise BadRequest(f"'{name}' not specified", fail)
        return default
    if value == "" and required:
        raise BadRequest(f"'{name}' is empty", fail)
    return check(value, name, operation)


def check(value: str, name: str, operation: str) -> str:
    """A value from anywhere in the request (a path segment too): no control characters, not oversized."""
    fail = f"Error on {operation} operation"
    if CONTROL.search(value):
        raise BadRequest(f"'{name}' has invalid char", fail)
    if len(value) > MAX_LENGTH:
        raise BadRequest(f"'{name}' is longer than {MAX_LENGTH} characters", fail)
    return value


def valid_job_id(s: str) -> bool:
    return bool(JOB_ID.fullmatch(s))


def flag(name: str, default: bool = False) -> bool:
    value = _source().get(name)
    return default if value is None else value.strip().lower() in TRUE


def present(name: str) -> bool:
    return name in _source()


def count(name: str, operation: str) -> int | None:
    """A non-negative integer parameter, or None when absent."""
    value = _source().get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"'{name}' must be a non-negative integer", f"Error on {operation} operation")
    return int(value)


def number(name: str) -> int | None:
    """A positive integer, or None when absent or not one (paging: the contract then returns everything)."""
    value = _source().get(name, "")
    return int(value) if value.isdigit() and 0 < len(value) <= 9 and int(value) > 0 else None
