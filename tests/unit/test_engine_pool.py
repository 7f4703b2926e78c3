"""engine.Pool: each piece of work is followed by the pool's releases in the same thread, whatever the work did."""

from __future__ import annotations

import threading

import pytest

from common.engine import Pool
from common.tasks_client import TasksClient


def test_every_piece_of_work_is_followed_by_the_releases_in_its_thread() -> None:
    seen: list[tuple[str, str]] = []
    release = lambda: seen.append(("release", threading.current_thread().name))  # noqa: E731

    def work(n: int) -> int:
        seen.append(("work", threading.current_thread().name))
        if n == 1:
            raise ValueError("the work failed")
        return n * 2

    with Pool(1, "test-pool", (release,)) as pool:
        assert pool.submit(work, 2).result() == 4
        with pytest.raises(ValueError):
            pool.submit(work, 1).result()
    assert [what for what, _ in seen] == ["work", "release", "work", "release"]
    assert {name for _, name in seen} == {"test-pool_0"}


def test_a_release_that_fails_neither_hides_the_result_nor_skips_the_others() -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise OSError("the connection was already gone")

    with Pool(1, "test-pool", (broken, lambda: calls.append("next"))) as pool:
        assert pool.submit(lambda: "done").result() == "done"
    assert calls == ["broken", "next"]


def test_the_tasks_client_opens_a_new_session_after_a_release() -> None:
    client = TasksClient("http://127.0.0.1:1", "token")
    first = client._session()
    assert client._session() is first  # kept between calls of one piece of work
    client.release()
    assert client._session() is not first
    client.release()
    client.release()  # nothing to close: no error
