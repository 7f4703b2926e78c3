"""JSON answers of the pages' scripts: the API's refusal passed on with its status, words and wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify

from . import oidc
from .api import ApiError


def refusal(e: ApiError) -> tuple[Response, int]:
    body = {"status": e.status, "description": e.description, "retry_after": e.retry_after,
            "details": [{"header": h, "value": v, "meaning": m} for h, v, m in e.details]}
    return jsonify(body), e.status


def answer(call: Callable[[], Any], status: int = 200) -> tuple[Response, int]:
    """`call()` as JSON, or the API's refusal (or a lost sign-in, 401) as the scripts show it."""
    try:
        return jsonify(call()), status
    except ApiError as e:
        return refusal(e)
    except oidc.SignInRequired:
        return refusal(ApiError(401, "your sign-in has ended: sign in again"))
