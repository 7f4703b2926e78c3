"""Checks of user values that need no request (routes, parsers and background work share them).

Every user value reaches the cluster only as one quoted word (common/commands.py), so quotes, `$`, `;` or
spaces are taken literally; what is refused here is what no path can hold or no tool should get: control
characters (newlines among them), empty values and oversized ones, digits that are not ASCII, unbounded JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BadRequest

MAX_LENGTH = 4096  # PATH_MAX
# A Slurm job id as squeue/sacct print it (array and het-job forms too); ASCII: `\d` would take other digits.
JOB_ID = re.compile(r"\d+(\+\d+|_\d+|_\[\d+-\d+\])?", re.ASCII)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


# The one integer parser for request values: ASCII digits only (`str.isdigit` takes "²" and "٣", which `int`
# refuses) and a bounded length, so no value can make `int` fail or grow without limit.
DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)


def integer(value: str) -> int | None:
    """`value` as a non-negative integer, or None when it is not one."""
    return int(value) if DIGITS.fullmatch(value) else None


JSON_MAX_BYTES = 64 * 1024
JSON_MAX_DEPTH = 32
JSON_MAX_DIGITS = 64


class _Refused(ValueError):
    pass


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, counted outside strings (before the recursive parser sees it)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = ch == "\\", ch != '"'
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _bounded_number(kind: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > JSON_MAX_DIGITS:
            raise _Refused(f"a number longer than {JSON_MAX_DIGITS} characters")
        return kind(text)
    return parse


def _no_constant(text: str) -> Any:
    raise _Refused(f"{text} (not JSON)")


def json_value(raw: str, name: str, description: str) -> Any:
    """A JSON parameter, bounded in size, nesting and number length: a hostile value is a 400 that says what was
    wrong, never a RecursionError or int's digit limit (500)."""
    def refuse(why: str) -> BadRequest:
        return BadRequest(f"Invalid JSON in '{name}': {why}", description)

    if len(raw) > JSON_MAX_BYTES:
        raise refuse(f"longer than {JSON_MAX_BYTES} characters")
    if _depth(raw) > JSON_MAX_DEPTH:
        raise refuse(f"nested deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(raw, parse_int=_bounded_number(int), parse_float=_bounded_number(float),
                          parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise refuse(f"{e.msg} at character {e.pos}") from None
    except (_Refused, ValueError, RecursionError) as e:
        raise refuse(str(e)[:200]) from None
