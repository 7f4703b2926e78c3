"""common/slurm/accounting.py: sacct's command line, rows and time arguments (real Slurm 22.05)."""

from __future__ import annotations

import pytest
from test_slurm_submit import ok, words

from common import errors
from common.slurm import accounting

# --- sacct ------------------------------------------------------------------------------------------------------

# sacct -X --noheader --parsable2 --format=<ACCT_FIELDS>, real lines.
SACCT = """\
7|normal|alice|COMPLETED|2026-11-25T06:11:55|00:00:02|2026-11-25T06:11:57|1|localhost|0:0|00:00:02|we|ird $(x)
11|normal|alice|COMPLETED|2026-11-25T06:14:28|00:02:01|2026-11-25T06:16:29|1|localhost|0:0|00:02:01|weird|name StdOut=/x Command=/y
12|normal|alice|RUNNING|2026-11-25T06:14:28|00:03:51|Unknown|1|localhost|0:0|00:03:51|wrap
16+0|normal|alice|CANCELLED by 1001|None|00:00:00|2026-11-25T06:16:03|1|None assigned|0:0|00:00:00|wrap
15_[1-3]|normal|alice|CANCELLED by 1001|None|00:00:00|2026-11-25T06:16:03|1|None assigned|0:0|00:00:00|wrap
"""  # noqa: E501


def test_accounting_rows():
    rows = accounting.Accounting().result(ok(SACCT))
    assert [r["jobid"] for r in rows] == ["7", "11", "12", "16+0", "15_[1-3]"]
    assert rows[0]["name"] == "we|ird $(x)" and rows[1]["name"] == "weird|name StdOut=/x Command=/y"
    assert rows[2] == {"jobid": "12", "partition": "normal", "name": "wrap", "user": "alice", "state": "RUNNING",
                       "start_time": "2026-11-25T06:14:28", "time": "00:03:51", "cpu_time": "00:03:51",
                       "elapsed_time": "00:03:51", "termination_time": "Unknown", "time_left": "Unknown",
                       "nodes": "1", "nodelist": "localhost", "exit_code": "0:0"}
    assert rows[3]["state"] == "CANCELLED by 1001" and rows[3]["nodelist"] == "None assigned"
    assert accounting.Accounting(["999999"]).result(ok("")) == []  # real: unknown id, exit 0, no output


def test_accounting_command():
    fmt = "--format=jobid,partition,user,state,start,cputime,end,nnodes,nodelist,exitcode,elapsed,jobname"
    assert words(accounting.Accounting()) == ["sacct", "-X", "--noheader", "--parsable2", fmt]
    assert words(accounting.Accounting(["12", "15_[1-3]"])) == [
        "sacct", "-X", "--noheader", "--parsable2", fmt, "--starttime=1970-01-02", "--jobs=12,15_[1-3]"]
    assert words(accounting.Accounting(["12"], "now-2days", "today"))[-3:] == [
        "--starttime=now-2days", "--endtime=today", "--jobs=12"]


@pytest.mark.parametrize(
    "value",
    ["2026-11-25", "2026-11-25T06:14", "2026-11-25T06:14:28", "2026-11-25T6:14", "1125", "112526", "11/25",
     "11/25/26", "11/25-06:14", "11/25/26-06:14:00", "06:14", "06:14:28", "6:14", "now", "now-1", "now+0",
     "now-1hours", "now-2days", "now-3week", "now-30minutes", "now-10seconds", "today", "midnight", "noon",
     "tomorrow", "fika", "teatime", " 1125 "],
)
def test_check_time_accepts_what_sacct_accepts(value):
    assert accounting.check_time(value) == value.strip()


@pytest.mark.parametrize(
    "value",
    # Each of these made the real sacct exit 1 with "Invalid time specification (pos=N): <value>".
    ["garbage", "11/25/2026", "now-1s", "now-1h", "now-", "now-x", "nowx", "elevenses", "yesterday", "Today",
     "24:00", "23:60", "1", "12345", "-1", "0", "2026", "2026-11", "2026-13-45", "2026-1-5", "13/01", "1301",
     "2026-11-25T24:00", "2026-11-25T06", "2026-11-25T06:14:28.5", "--all", "now;id"],
)
def test_check_time_refuses(value):
    with pytest.raises(errors.BadRequest) as caught:
        accounting.check_time(value)
    assert "Invalid time" in caught.value.error


def test_accounting_checks_times_itself():
    with pytest.raises(errors.BadRequest):
        accounting.Accounting(None, "--all")
