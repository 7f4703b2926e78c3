"""common/idempotency.py without a site: the request's fingerprint, the key's validation and the decorator's
handling of each answer of the store (a fake tasks client); the tasks side runs against Redis in
tests/integration/test_idempotency_restart.py and through the gateway in tests/e2e/test_idempotency.py."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask, g, jsonify, request
from test_openapi import SITE

from common import idempotency
from common.app import create_app
from common.auth import Identity
from common.config import parse
from common.errors import BadRequest


class FakeTasks:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Any]] = []

    def reserve_key(self, token: str, key: str, fingerprint: str) -> dict[str, Any]:
        self.calls.append(("reserve", (key, fingerprint)))
        return self.answer

    def complete_key(self, token: str, key: str, nonce: str, recorded: dict[str, Any]) -> bool:
        self.calls.append(("complete", recorded))
        return True

    def release_key(self, token: str, key: str, nonce: str) -> None:
        self.calls.append(("release", nonce))


def app_with(answer: dict[str, Any], fail: bool = False) -> tuple[Flask, FakeTasks]:
    app = create_app("compute", [], parse(SITE, {}), public=lambda method, path: True)
    fake = FakeTasks(answer)
    app.extensions[idempotency.CLIENT] = fake
    runs = app.extensions["runs"] = []

    @app.before_request
    def _caller() -> None:
        g.identity = Identity("alice", "token", {})

    @app.post("/work")
    @idempotency.idempotent
    def work() -> Any:
        runs.append(1)
        if fail:
            raise BadRequest("no", "Failed")
        return jsonify({"task_id": "t1"}), 201

    return app, fake


def fingerprint_of(**request: Any) -> str:
    app = Flask("compute")
    with app.test_request_context("/jobs/upload", method="POST", **request):
        return idempotency.fingerprint("compute")


def test_fingerprint_ignores_field_order_and_multipart_framing():
    one = fingerprint_of(data={"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh")},
                         headers={"X-Machine-Name": "cluster"})
    two = fingerprint_of(data={"file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh"), "b": "2", "a": "1"},
                         headers={"X-Machine-Name": "cluster"})
    assert one == two


@pytest.mark.parametrize("change", [
    {"data": {"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n#"), "j.sh")}},
    {"data": {"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n"), "k.sh")}},
    {"data": {"a": "12", "b": "", "file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh")}},  # text moved between fields
    {"data": {"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh")}, "headers": {"X-Machine-Name": "x"}},
    {"data": {"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh")}, "query_string": "q=1"},
])
def test_fingerprint_sees_every_part(change):
    base = fingerprint_of(data={"a": "1", "b": "2", "file": (io.BytesIO(b"#!/bin/sh\n"), "j.sh")},
                          headers={"X-Machine-Name": "cluster"})
    change.setdefault("headers", {"X-Machine-Name": "cluster"})
    assert fingerprint_of(**change) != base


def test_the_file_is_read_from_its_start_afterwards():
    app = Flask("compute")
    with app.test_request_context("/", method="POST", data={"file": (io.BytesIO(b"abc"), "j.sh")}):
        idempotency.fingerprint("compute")
        assert request.files["file"].read() == b"abc"


@pytest.mark.parametrize("key", ["", " ", "a b", "x" * 256, "é", "a\tb", "\x7f"])
def test_bad_keys_are_400(key):
    app, fake = app_with({"state": "new", "nonce": "n"})
    reply = app.test_client().post("/work", headers={"Idempotency-Key": key})
    assert reply.status_code == 400 and reply.json["description"] == "Invalid Idempotency-Key"
    assert fake.calls == [] and app.extensions["runs"] == []


def test_visible_ascii_keys_up_to_255_are_taken():
    for key in ("k", "x" * 255, "$(id)`x`;'\"<>{}~!"):
        app, fake = app_with({"state": "new", "nonce": "n"})
        assert app.test_client().post("/work", headers={"Idempotency-Key": key}).status_code == 201
        assert fake.calls[0][1][0] == key


def test_no_key_no_store():
    app, fake = app_with({"state": "new", "nonce": "n"})
    reply = app.test_client().post("/work")
    assert reply.status_code == 201 and idempotency.REPLY_HEADER not in reply.headers and fake.calls == []


def test_new_runs_records_and_says_miss():
    app, fake = app_with({"state": "new", "nonce": "n"})
    reply = app.test_client().post("/work", headers={"Idempotency-Key": "k"})
    assert reply.status_code == 201 and reply.headers[idempotency.REPLY_HEADER] == "miss"
    kind, recorded = fake.calls[1]
    assert kind == "complete" and recorded["status"] == 201 and '"t1"' in recorded["body"]
    assert recorded["headers"] == {"Content-Type": "application/json"}


def test_hit_replays_without_running():
    recorded = {"status": 201, "body": '{"task_id":"t0"}', "headers": {"Content-Type": "application/json"}}
    app, fake = app_with({"state": "hit", "reply": recorded})
    reply = app.test_client().post("/work", headers={"Idempotency-Key": "k"})
    assert reply.status_code == 201 and reply.json == {"task_id": "t0"}
    assert reply.headers[idempotency.REPLY_HEADER] == "hit" and app.extensions["runs"] == []


def test_in_flight_is_409_with_retry_after():
    app, _ = app_with({"state": "in_flight", "retry_after": 2})
    reply = app.test_client().post("/work", headers={"Idempotency-Key": "k"})
    assert reply.status_code == 409 and reply.headers["Retry-After"] == "2" and reply.json["description"]
    assert app.extensions["runs"] == []


def test_mismatch_is_422():
    app, _ = app_with({"state": "mismatch"})
    reply = app.test_client().post("/work", headers={"Idempotency-Key": "k"})
    assert reply.status_code == 422 and "another request" in reply.json["description"]
    assert app.extensions["runs"] == []


def test_a_failure_releases_the_key():
    app, fake = app_with({"state": "new", "nonce": "n"}, fail=True)
    reply = app.test_client().post("/work", headers={"Idempotency-Key": "k"})
    assert reply.status_code == 400 and idempotency.REPLY_HEADER not in reply.headers
    assert [kind for kind, _ in fake.calls] == ["reserve", "release"]


def test_gunicorn_lets_a_long_key_reach_the_service():
    """A 10 kB key must get the JSON 400 above, not gunicorn's HTML 431 (default field limit 8190 bytes)."""
    from common import serving

    assert serving.limit_request_field_size >= 16384
