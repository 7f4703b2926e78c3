"""common/slurm/queue.py: squeue --json rendered as squeue's text output (captured from the real Slurm 22.05)."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from test_slurm_submit import ok, words

from common import errors
from common.slurm import queue

# --- squeue --json ----------------------------------------------------------------------------------------------

# squeue --json (trimmed to the fields used) and, in the same second, squeue --states=all with the text format
# '%i|%P|%j|%u|%T|%S|%M|%L|%D|%R' (the clock read 1795587359; the site is in UTC).
NOW = 1795587359
SQUEUE_JSON = {"jobs": [
    {"job_id": 7, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "we|ird $(x)", "partition": "normal", "user_name": "alice", "job_state": "COMPLETED", "state_reason": "None", "state_description": "", "start_time": 1795587115, "end_time": 1795587117, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": "localhost"},  # noqa: E501
    {"job_id": 10, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "s.sh", "partition": "normal", "user_name": "alice", "job_state": "RUNNING", "state_reason": "None", "state_description": "", "start_time": 1795587268, "end_time": 1795673668, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": "localhost"},  # noqa: E501
    {"job_id": 11, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "weird|name StdOut=/x Command=/y", "partition": "normal", "user_name": "alice", "job_state": "RUNNING", "state_reason": "None", "state_description": "", "start_time": 1795587268, "end_time": 1795587868, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 10, "node_count": 1, "nodes": "localhost"},  # noqa: E501
    {"job_id": 13, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "wrap", "partition": "xfer", "user_name": "alice", "job_state": "PENDING", "state_reason": "Resources", "state_description": "", "start_time": 1795673668, "end_time": 1795760068, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": ""},  # noqa: E501
    {"job_id": 14, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "wrap", "partition": "normal", "user_name": "alice", "job_state": "PENDING", "state_reason": "PartitionTimeLimit", "state_description": "", "start_time": 0, "end_time": 0, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1564, "node_count": 1, "nodes": ""},  # noqa: E501
    {"job_id": 15, "array_job_id": 15, "array_task_id": None, "array_task_string": "1-3", "het_job_id": 0, "het_job_offset": 0, "name": "wrap", "partition": "normal", "user_name": "alice", "job_state": "PENDING", "state_reason": "Resources", "state_description": "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions", "start_time": 0, "end_time": 0, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": ""},  # noqa: E501
    {"job_id": 16, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 16, "het_job_offset": 0, "name": "wrap", "partition": "normal", "user_name": "alice", "job_state": "PENDING", "state_reason": "Resources", "state_description": "", "start_time": 0, "end_time": 0, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": ""},  # noqa: E501
    {"job_id": 17, "array_job_id": 0, "array_task_id": None, "array_task_string": "", "het_job_id": 16, "het_job_offset": 1, "name": "wrap", "partition": "normal", "user_name": "alice", "job_state": "PENDING", "state_reason": "Resources", "state_description": "", "start_time": 0, "end_time": 0, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": ""},  # noqa: E501
    {"job_id": 57, "array_job_id": 56, "array_task_id": 1, "array_task_string": "", "het_job_id": 0, "het_job_offset": 0, "name": "wrap", "partition": "normal", "user_name": "bob", "job_state": "RUNNING", "state_reason": "None", "state_description": "", "start_time": 1795587268, "end_time": 1795673668, "suspend_time": 0, "pre_sus_time": 0, "time_limit": 1440, "node_count": 1, "nodes": "localhost"},  # noqa: E501
]}
SQUEUE_TEXT = """\
7|normal|we|ird $(x)|alice|COMPLETED|2026-11-25T06:11:55|0:02|23:59:58|1|localhost
14|normal|wrap|alice|PENDING|N/A|0:00|1-02:04:00|1|(PartitionTimeLimit)
15_[1-3]|normal|wrap|alice|PENDING|N/A|0:00|1-00:00:00|1|(Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions)
16+0|normal|wrap|alice|PENDING|N/A|0:00|1-00:00:00|1|(Resources)
16+1|normal|wrap|alice|PENDING|N/A|0:00|1-00:00:00|1|(Resources)
10|normal|s.sh|alice|RUNNING|2026-11-25T06:14:28|1:31|23:58:29|1|localhost
11|normal|weird|name StdOut=/x Command=/y|alice|RUNNING|2026-11-25T06:14:28|1:31|8:29|1|localhost
13|xfer|wrap|alice|PENDING|2026-11-26T06:14:28|0:00|1-00:00:00|1|(Resources)
"""  # noqa: E501
FIELDS = ("jobid", "partition", "name", "user", "state", "start_time", "time", "time_left", "nodes", "nodelist")


def squeue_text_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for line in SQUEUE_TEXT.splitlines():
        parts = line.split("|")
        head, tail = parts[:2], parts[-7:]  # the name (3rd) may hold "|"
        rows[parts[0]] = dict(zip(FIELDS, [*head, "|".join(parts[2:-7]), *tail], strict=True))
    return rows


def test_job_rows_equal_squeue_text():
    expected = squeue_text_rows()
    for job in SQUEUE_JSON["jobs"]:
        row = queue.job_row(job, NOW, UTC)
        if row["jobid"] in expected:
            assert row == expected[row["jobid"]]


def test_queue_filters_like_squeue_and_sorts():
    rows = queue.queue_rows(SQUEUE_JSON, "alice", None, NOW, UTC)
    assert [r["jobid"] for r in rows] == ["10", "11", "13", "14", "15_[1-3]", "16+0", "16+1"]  # no COMPLETED, no bob
    assert all(list(r) == list(FIELDS) for r in rows)
    assert [r["jobid"] for r in queue.queue_rows(SQUEUE_JSON, None, None, NOW)][-1] == "56_1"


@pytest.mark.parametrize(
    ("jobs", "found"),
    [(["16"], ["16+0", "16+1"]), (["16+1"], ["16+1"]), (["15"], ["15_[1-3]"]), (["15_[1-3]"], ["15_[1-3]"]),
     (["56_1"], ["56_1"]), (["56"], ["56_1"]), (["57"], ["56_1"]), (["7"], []), (["999"], []),
     (["13", "10"], ["10", "13"])],
)
def test_queue_job_selection(jobs, found):
    assert [r["jobid"] for r in queue.queue_rows(SQUEUE_JSON, None, jobs, NOW)] == found


def test_queue_times():
    running = dict(SQUEUE_JSON["jobs"][1])
    assert queue.job_row(running, running["start_time"] + 3 * 3600 + 5)["time"] == "3:00:05"
    assert queue.job_row({**running, "time_limit": None}, NOW)["time_left"] == "UNLIMITED"
    assert queue.job_row({**running, "time_limit": 0xFFFFFFFE}, NOW)["time_left"] == "NOT_SET"
    suspended = {**running, "job_state": "SUSPENDED", "pre_sus_time": 75}
    assert queue.job_row(suspended, NOW)["time"] == "1:15"
    assert [queue.squeue_secs(s) for s in (0, 59, 3600, 86400 + 61, -1)] == ["0:00", "0:59", "1:00:00",
                                                                              "1-00:01:01", "INVALID"]


def test_queue_command():
    command = queue.Queue("alice", ["10", "16+1"])
    assert words(command) == ["squeue", "--json", "--user=alice", "--jobs=10,16+1"]
    assert words(queue.Queue(None, None)) == ["squeue", "--json"]
    assert [r["jobid"] for r in command.result(ok(json.dumps(SQUEUE_JSON)))] == ["10", "16+1"]
    # Without --json, real squeue exits 1 for a single unknown id; a later squeue may do so with --json too.
    assert command.result(ok(stderr="slurm_load_jobs error: Invalid job id specified\n", status=1)) == []
    with pytest.raises(errors.RemoteError):
        command.result(ok(stderr="squeue: error: Unable to contact slurm controller\n", status=1))
