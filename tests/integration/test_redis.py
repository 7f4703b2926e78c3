"""Redis keeps what it was told across a restart (AOF), and wants its password."""

from __future__ import annotations

import uuid

import pytest
import redis


def test_key_survives_restart(site):
    client = redis.Redis.from_url(site.env["REDIS_URL"])
    key, value = f"tests:{uuid.uuid4()}", uuid.uuid4().hex
    client.set(key, value)
    site.control("restart", "redis")
    client = redis.Redis.from_url(site.env["REDIS_URL"])
    assert client.get(key) == value.encode()
    client.delete(key)


def test_password_is_required(site):
    url = site.env["REDIS_URL"]
    without_password = "redis://" + url.split("@", 1)[1]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(without_password).get("x")
