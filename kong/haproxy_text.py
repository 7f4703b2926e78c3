"""Pieces of HAProxy text the rule writers share: the JSON answers and how they are written."""

from __future__ import annotations

UNAUTHORIZED = '{"message":"Unauthorized"}'
RATE_LIMITED = '{"message":"API rate limit exceeded"}'
INVALID_PATH = '{"description":"Invalid path"}'
NOT_FOUND = '{"description":"Not found"}'
NO_ROUTE = '{"message":"no Route matched with those values"}'
NOT_DEPLOYED = '{"description":"Service not deployed"}'
NOT_REGISTERED = '{"description":"The token was issued to an application that is not registered at this site"}'


def missing_scope(scope: str) -> str:
    return ('{"description":"This request needs the scope ' + scope
            + ', which the application this token was issued to was not granted"}')


def quoted_list(items: list[str]) -> str:
    return '"' + ", ".join(items) + '"'


def json_return(status: int, body: str, *headers: str) -> str:
    hdrs = "".join(f" hdr {h}" for h in headers)
    return f"http-request return status {status} content-type application/json string '{body}'{hdrs}"
