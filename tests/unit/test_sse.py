"""common/sse.py: the event-stream format, Last-Event-ID, and a response that gives back what it holds however it
ends."""

from __future__ import annotations

from flask import Flask

from common import sse


def test_event_fields_and_multiline_data():
    assert sse.event("x", id="1-0", name="task") == "id: 1-0\nevent: task\ndata: x\n\n"
    assert sse.event("a\nb\r\nc\rd") == "data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert sse.event("", retry_ms=2000) == "retry: 2000\ndata: \n\n"


def test_a_value_cannot_start_another_field_or_event():
    hostile = "x\n\nevent: forged\nid: 9"
    text = sse.event(hostile, name="task")
    blocks = text.split("\n\n")
    assert blocks[1:] == [""]  # one event only
    assert all(line.startswith(("event: task", "data: ")) for line in blocks[0].split("\n"))


def test_comment_and_retry():
    assert sse.comment("keep-alive") == ": keep-alive\n\n"
    assert sse.retry(2000) == "retry: 2000\n\n"


def test_last_event_id_from_header_or_parameter():
    app = Flask("t")
    with app.test_request_context("/", headers={"Last-Event-ID": " 12-0 "}):
        assert sse.last_event_id() == "12-0"
    with app.test_request_context("/?lastEventId=13-1"):
        assert sse.last_event_id() == "13-1"
    with app.test_request_context("/", headers={"Last-Event-ID": "   "}):
        assert sse.last_event_id("d") == "d"


def test_response_streams_unbuffered_and_closes_once():
    app, closed = Flask("t"), []

    def pieces():
        yield sse.comment("a")
        yield sse.event("b")

    with app.test_request_context("/"):
        reply = sse.response(pieces(), on_close=lambda: closed.append(1))
    assert reply.mimetype == "text/event-stream"
    assert reply.headers["Cache-Control"] == "no-cache" and reply.headers["X-Accel-Buffering"] == "no"
    assert reply.is_streamed
    reply.close()  # never iterated (the client left at once): what the stream held is still given back
    assert closed == [1]


def test_response_on_close_after_the_stream_ran():
    app, closed = Flask("t"), []

    @app.get("/")
    def stream():
        return sse.response(iter([sse.event("x")]), on_close=lambda: closed.append(1))

    reply = app.test_client().get("/")
    assert reply.data == b"data: x\n\n"
    reply.close()
    assert closed == [1]
