"""The whole listing of a user's tasks is written as it is read (tasks/routes.py streamed): the same JSON as one
document, whatever the count, and a store that fails before the first task is an error, not a cut answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask

from tasks import routes


def body(items: list[tuple[str, dict]]) -> tuple[str, int]:
    with Flask(__name__).test_request_context():
        reply = routes.streamed("tasks", iter(items))
        chunks = [c.decode() if isinstance(c, bytes) else c for c in reply.response]
    return "".join(chunks), len(chunks)


@pytest.mark.parametrize("count", [0, 1, 2, 3000])
def test_the_stream_is_the_same_document(count):
    items = [(f"{i:032x}", {"task_id": f"{i:032x}", "status": "200", "data": {"msg": "ü \"q\" $(x)" * (i % 3)}})
             for i in range(count)]
    text, chunks = body(items)
    assert json.loads(text) == {"tasks": dict(items)}
    assert list(json.loads(text)["tasks"]) == [i for i, _ in items]  # oldest first, as read
    if count == 3000:
        assert chunks > 1  # written as it goes, not at once


def test_a_store_that_fails_before_the_first_task_fails_the_request():
    def broken() -> Iterator[tuple[str, dict]]:
        raise ConnectionError("redis down")
        yield  # a generator

    with Flask(__name__).test_request_context(), pytest.raises(ConnectionError):
        routes.streamed("tasks", broken())
