"""docs/examples/events.sh runs as a user would run it and says what it should."""

from __future__ import annotations

import re

from test_utilities_examples import run_example


def test_events_example_runs(site):
    result = run_example("docs/examples/events.sh")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    tasks = [line for line in lines if line.startswith("task: ")]
    assert tasks and all(re.fullmatch(r"task: [0-9a-f]{32} [12]00", line) for line in tasks), tasks
    assert tasks[-1].endswith(" 200")
    jobs = [line for line in lines if line.startswith("job: ")]
    assert all(re.fullmatch(r"job: \d+ (PENDING|RUNNING|COMPLETING)", line) for line in jobs[:-1]), jobs
    assert re.fullmatch(r"job: \d+ COMPLETED exit 0:0", jobs[-1]), jobs
    assert "resumed: end idle" in lines  # reconnected after the last event: nothing new, nothing repeated
    assert "bad id: 400" in lines
