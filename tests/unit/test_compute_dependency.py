"""A script's dependency (compute/dependency.py): one dialect, the caller's own jobs only."""

from __future__ import annotations

import pytest

from common import errors
from compute import dependency


@pytest.mark.parametrize(("script", "spec"), [
    ("#!/bin/bash\n#SBATCH --dependency=afterok:5\ntrue\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --dependency afterok:5 # why\n", "afterok:5"),
    ("#!/bin/bash\n\n# comment\n#SBATCH -d afterany:5:6\n", "afterany:5:6"),
    ("#!/bin/bash\n#SBATCH -dafterok:5\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --depend='afterok:5'\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --dependency=afterok:5\n#SBATCH --dependency=afterok:6\n", "afterok:6"),
    ("#!/bin/bash\n#SBATCH --job-name=--dependency=afterok:5\n", ""),
    ("#!/bin/bash\necho hi\n#SBATCH --dependency=afterok:5\n", ""),  # after the first command: not a directive
    ("#!/bin/bash\n#SBATCH --dependency='unclosed\n", "'unclosed"),
    ("#!/bin/bash\n#SBATCH\t--dependency=afterok:5\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH--dependency=afterok:5\n", "afterok:5"),
])
def test_requested_dependency(script, spec):
    assert dependency.requested(script.encode()) == spec


@pytest.mark.parametrize("line", ["#PBS -W depend=afterok:5", "#BSUB -w done(5)"])
def test_other_dialects_are_refused(line):
    with pytest.raises(errors.BadRequest):
        dependency.requested(f"#!/bin/bash\n{line}\n".encode())


@pytest.mark.parametrize(("spec", "ids"), [("afterok:5", ["5"]), ("afterok:5:6_2,afterany:7", ["5", "6", "7"]),
                                           ("after:5+10?afternotok:6", ["5", "6"]), ("singleton", []), ("", [])])
def test_dependency_ids(spec, ids):
    assert dependency.check(spec) == ids


@pytest.mark.parametrize("spec", ["afterok:$(id)", "afterok:-1", "afterok:²", "a,b", "afterok:1,afterok:2?afterok:3",
                                  "before:1", "afterok:" + "9" * 30, "afterok:1 --wrap=id", "afterok:", "'unclosed"])
def test_malformed_dependencies(spec):
    with pytest.raises(errors.BadRequest):
        dependency.check(spec)


def test_allowed_dependencies_need_every_job_to_be_the_callers():
    seen = []

    def run(command):
        seen.append(type(command).__name__)
        return {"6"} if isinstance(command, dependency.AccountedJobs) else {"5"}  # 6 finished long ago

    assert dependency.allowed(run, "alice", "afterok:5:6") == "afterok:5:6"
    assert seen == ["QueuedJobs", "AccountedJobs"]
    with pytest.raises(errors.BadRequest) as caught:
        dependency.allowed(lambda command: set(), "alice", "afterok:7")
    assert caught.value.error == "Invalid dependency: job 7 is not one of your jobs"
