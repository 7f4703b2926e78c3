"""The per-user bound on synchronous commands (common/ssh.py UserSlots)."""

from __future__ import annotations

import threading

import pytest

from common import errors
from common.auth import Identity
from common.ssh import UserSlots


def test_user_slots_bound_each_user_and_release_them():
    slots = UserSlots(2)
    alice, bob = Identity("alice", "t", {}), Identity("bob", "t", {})
    with slots.hold(alice, "cluster"), slots.hold(alice, "cluster"):
        with pytest.raises(errors.TooManyRequests) as caught, slots.hold(alice, "cluster"):
            pass
        assert caught.value.status == 429 and caught.value.headers() == {"Retry-After": "1"}
        with slots.hold(bob, "cluster"):  # another user is not affected
            pass
        with slots.hold(Identity("alice", "t", {}, background=True), "cluster"):  # background work is not counted
            pass
    with slots.hold(alice, "cluster"), slots.hold(alice, "cluster"):  # released, also after an error
        pass
    assert not slots._held


def test_user_slots_under_threads():
    slots, barrier, refused = UserSlots(3), threading.Barrier(8), []

    def one() -> None:
        try:
            with slots.hold(Identity("alice", "t", {}), "cluster"):
                barrier.wait(timeout=10)
        except errors.TooManyRequests:
            refused.append(1)
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 5 and not slots._held
