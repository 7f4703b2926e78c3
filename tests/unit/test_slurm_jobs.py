"""common/slurm/jobs.py: our jobs found again by their comment, and scancel, on outputs captured from the real
Slurm 22.05 of the stack."""

from __future__ import annotations

import pytest
from test_slurm_submit import ok, words

from common import errors
from common.slurm import jobs

# --- squeue: the job of a task ----------------------------------------------------------------------------------

# squeue --me --states=all --noheader --format=%i|%k, trimmed (job 44's comment was set by hand to mislead).
TAGGED = """14|(null)
15_[1-3]|(null)
16+0|(null)
44|x StdOut=/evil Command=/evil2
10|firecrest-task=t1
11|firecrest-task=t2
46|firecrest-task=err
49+0|firecrest-task=aa
49+1|firecrest-task=aa
48_1|firecrest-task=arr|x
48_2|firecrest-task=arr|x
"""


def test_find_tagged():
    assert words(jobs.FindTagged("t1")) == ["squeue", "--me", "--states=all", "--noheader", "--format=%i|%k"]
    for tag, jobid in [("t1", "10"), ("t2", "11"), ("aa", "49"), ("arr|x", "48"), ("arr", None), ("t", None)]:
        assert jobs.FindTagged(tag).result(ok(TAGGED)) == jobid
    assert jobs.FindTagged("t1").result(ok("")) is None


def test_find_transfer_jobs():
    """storage's: only jobs still queued or running, every one of them, by squeue id."""
    assert words(jobs.FindJob("t1")) == ["squeue", "--me", "--noheader", "--format=%i|%k"]
    text = TAGGED.replace("firecrest-task=", "firecrest-transfer=")
    for tag, found in [("t1", ["10"]), ("aa", ["49+0", "49+1"]), ("arr|x", ["48_1", "48_2"]), ("arr", [])]:
        assert jobs.FindJob(tag).result(ok(text)) == found
    assert jobs.FindJob("t1").result(ok(TAGGED)) == []  # compute's tag is not a transfer's
    assert jobs.FindTagged("t1").result(ok(text)) is None


def test_cancel_transfer_jobs():
    assert words(jobs.CancelJobs(["10", "49+0"])) == ["scancel", "--full", "10", "49+0"]
    assert jobs.CancelJobs(["10"]).result(ok(stderr="scancel: Terminating job 10\n")) == ""



# --- scancel ----------------------------------------------------------------------------------------------------


def test_cancel_texts():
    command = jobs.Cancel("44")
    assert words(command) == ["scancel", "-v", "44"]
    assert command.result(ok(stderr="scancel: Terminating job 44\n")) == "scancel: Terminating job 44"
    # Real: unknown job and already finished job both exit 0, the error is only in the text.
    unknown = ("scancel: Terminating job 999999\n"
               "scancel: error: Kill job error on job id 999999: Invalid job id specified\n")
    text = command.result(ok(stderr=unknown))
    assert jobs.cancel_error(text) == "Kill job error on job id 999999: Invalid job id specified"
    done = "scancel: Terminating job 11\nscancel: error: Kill job error on job id 11: Job/step already completing or completed"  # noqa: E501
    assert jobs.cancel_error(done) == "Kill job error on job id 11: Job/step already completing or completed"
    assert jobs.cancel_error("scancel: Terminating job 44") is None
    assert jobs.cancel_error("") is None
    assert jobs.cancel_error("some error") == "some error"


def test_cancel_of_another_users_job():
    # Real: bob cancelling alice's job exits 210.
    real = "scancel: Terminating job 44\nscancel: error: Kill job error on job id 44: Access/permission denied\n"
    with pytest.raises(errors.PermissionDenied) as caught:
        jobs.Cancel("44").result(ok(stderr=real, status=210))
    assert caught.value.error == "User does not have permission to cancel job"
