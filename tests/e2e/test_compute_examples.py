"""docs/examples/compute.sh runs as a user would run it and says what it should."""

from __future__ import annotations

import re

from test_utilities_examples import run_example


def test_compute_example_runs(site):
    result = run_example("docs/examples/compute.sh")
    assert result.returncode == 0, result.stderr
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    match = re.fullmatch(r"200 job (\d+), output in (/home/alice/firecrest/[0-9a-f]{32}/slurm-\d+\.out)",
                         said["submit"])
    assert match, said["submit"]
    jobid, output = match.groups()
    assert re.fullmatch(rf"{jobid} example (PENDING|RUNNING)", said["jobs"])
    assert said["acct"] == f"{jobid} COMPLETED exit 0:0"
    assert re.fullmatch(r"200 \(job \d+\)", said["cancel"])
    assert said["bad account"].startswith("400 sbatch: error: ")
    assert site.path(output).read_text() == "hello from the compute example\n"
