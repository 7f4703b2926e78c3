"""docs/examples/idempotency.sh runs as a user would run it and says what it should."""

from __future__ import annotations

import re

from test_utilities_examples import run_example


def test_idempotency_example_runs(site):
    result = run_example("docs/examples/idempotency.sh")
    assert result.returncode == 0, result.stderr
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    match = re.fullmatch(r"201 miss task ([0-9a-f]{32})", said["first"])
    assert match, said["first"]
    assert said["retry"] == f"201 hit task {match.group(1)}"
    assert said["another request"] == "422 Idempotency-Key reused with another request"
    assert said["bad key"] == "400 Invalid Idempotency-Key"
