"""Request parameters as the contract sends them: the query string for GET, form fields otherwise (routes only;
the checks themselves, which need no request, are in common/values.py)."""

from __future__ import annotations

from flask import request

from .errors import BadRequest
from .values import check, integer

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


def flag(name: str, default: bool = False) -> bool:
    value = _source().get(name)
    return default if value is None else value.strip().lower() in TRUE


def present(name: str) -> bool:
    return name in _source()


def count(name: str, operation: str, maximum: int = 10**18 - 1) -> int | None:
    """A non-negative integer parameter (at most `maximum`), or None when absent; anything else is a 400."""
    value = _source().get(name)
    if value is None or value == "":
        return None
    number = integer(value)
    if number is None or number > maximum:
        bound = f"from 0 to {maximum}" if maximum < 10**18 - 1 else "of at most 18 digits, 0 or more"
        raise BadRequest(f"'{name}' must be an integer {bound}, in ASCII digits", f"Error on {operation} operation")
    return number


def number(name: str) -> int | None:
    """A positive integer, or None when absent or not one (ls paging: the contract then returns everything)."""
    value = integer(_source().get(name, ""))
    return value if value and value < 10**9 else None
