"""compute/workdirs.py: directories made ahead are handed out once, per user and system, and never over-made."""

from __future__ import annotations

from compute.workdirs import Workdirs


def test_planned_directories_are_taken_once_and_only_once_made():
    dirs = Workdirs(keep=2)
    assert dirs.take("cluster", "alice") is None
    planned = dirs.plan("cluster", "alice")
    assert len(planned) == 2 and all(len(i) == 32 for i in planned)
    assert dirs.plan("cluster", "alice") == []  # being made by another submission: not planned twice
    assert dirs.take("cluster", "alice") is None  # planned, not made yet
    dirs.made("cluster", "alice", planned, ok=True)
    assert dirs.take("cluster", "bob") is None and dirs.take("cluster2", "alice") is None
    taken = {dirs.take("cluster", "alice"), dirs.take("cluster", "alice")}
    assert taken == set(planned) and dirs.take("cluster", "alice") is None


def test_a_failed_write_makes_nothing_ready_and_frees_the_plan():
    dirs = Workdirs(keep=1)
    planned = dirs.plan("cluster", "alice")
    dirs.made("cluster", "alice", planned, ok=False)
    assert dirs.take("cluster", "alice") is None
    assert len(dirs.plan("cluster", "alice")) == 1
