"""The storage servers' garbage sweep (deploy/local/swift/launch.py): it collects while requests end, once more after
the last one, and never at rest."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

LAUNCH = Path(__file__).resolve().parents[2] / "deploy" / "local" / "swift" / "launch.py"


def load_launch():
    spec = importlib.util.spec_from_file_location("firecrest_launch_under_test", LAUNCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Stop(Exception):
    pass


def test_the_sweep_collects_while_requests_end_then_once_more_then_never(monkeypatch):
    launch = load_launch()
    sweep = launch.GarbageSweep(lambda env, start_response: [b"ok"])
    requests_before_each_wake = [0, 3, 1, 0, 0, 0, 2, 0, 0]  # requests that end during each sleep
    collections: list[int] = []
    wakes = iter(requests_before_each_wake)

    def sleep(seconds: float) -> None:
        assert seconds == launch.SWEEP_S
        try:
            for _ in range(next(wakes)):
                sweep.ended += 1
        except StopIteration:
            raise Stop from None

    monkeypatch.setattr(launch.gc, "collect", lambda: collections.append(sweep.ended))
    with pytest.raises(Stop):
        sweep.sweep_forever(sleep)
    # Wakes 2 and 3 saw requests end, 4 is the one after the last, 5 and 6 are at rest; likewise 7, then 8.
    assert collections == [3, 4, 4, 6, 6]


def test_a_request_counts_as_ended_even_when_its_handler_fails():
    launch = load_launch()

    def failing(env, start_response):
        raise RuntimeError("the server's own error")

    sweep = launch.GarbageSweep(failing)
    sweep.pid = os.getpid()  # as in a worker whose sweeper already runs
    with pytest.raises(RuntimeError):
        sweep({}, lambda *a: None)
    assert sweep.ended == 1
