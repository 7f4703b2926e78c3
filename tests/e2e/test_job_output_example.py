"""docs/examples/job_output.sh runs as a user would run it and says what it should."""

from __future__ import annotations

import json
import re

from test_utilities_examples import run_example


def test_job_output_example_runs(site):
    result = run_example("docs/examples/job_output.sh")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    said = [line.split(": ", 1) for line in lines if ": " in line]
    jobid = dict(said)["job"]
    assert re.fullmatch(r"\d+", jobid)
    ticks = [f"tick {i}" for i in (1, 2, 3)]
    assert [value for key, value in said if key == "output"] == ticks
    assert json.loads(dict(said)["end"]) == {"jobid": jobid, "state": "FAILED", "exit_code": "3:0", "offset": 21}
    assert [value for key, value in said if key == "from 7"] == ticks[1:]
    assert [value for key, value in said if key == "base64"] == ticks
    assert dict(said)["bad offset"] == "400"
