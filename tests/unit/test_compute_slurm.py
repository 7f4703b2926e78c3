"""compute/slurm.py: command lines and parsers, on outputs captured from the real Slurm 22.05 of the stack."""

from __future__ import annotations

import json
import shlex
from datetime import UTC
from pathlib import Path

import pytest

from common import errors, params
from common.commands import Output
from compute import names as names_module
from compute import slurm

HOSTILE = ["-rf", "--help", "a b", "$(id)", "it's", '"q"', "`id`", "x;y", "a|b"]


def words(command) -> list[str]:
    """The argv as the login node's wrapper will split it (after `ID=rid timeout -k 2 5`)."""
    split = shlex.split(command.line(5, "rid"))
    assert split[:5] == ["ID=rid", "timeout", "-k", "2", "5"]
    return split[5:]


def ok(stdout: str = "", stderr: str = "", status: int = 0) -> Output:
    return Output(status, stdout.encode(), stderr.encode())


# --- job ids ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("jobid", ["12", "12+1", "12_3", "12_[1-3]"])
def test_valid_job_ids(jobid):
    assert params.valid_job_id(jobid)


@pytest.mark.parametrize("jobid", ["", "-1", "12,13", "12_", "12_[1-]", "1 2", "١٢", "12\n", "--help", "12_[1-3]x"])
def test_invalid_job_ids(jobid):
    assert not params.valid_job_id(jobid)


def test_commands_refuse_invalid_ids():
    for make in (lambda: slurm.Cancel("-1"), lambda: slurm.JobFiles("1,2"), lambda: slurm.Queue(None, ["x"]),
                 lambda: slurm.Accounting(["--all"])):
        with pytest.raises(errors.BadRequest):
            make()


# --- sbatch -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_submit_keeps_every_value_one_word(hostile):
    command = slurm.Submit(f"/home/alice/{hostile}", f"/home/{hostile}", "abc123", hostile, {"V": "x y"})
    assert words(command) == ["sbatch", "--parsable", f"--chdir=/home/{hostile}", "--comment=firecrest-task=abc123",
                              "--dependency=", f"--account={hostile}", "--export=ALL,V=x y", "--",
                              f"/home/alice/{hostile}"]


def test_submit_without_account_and_env():
    assert words(slurm.Submit("-s.sh", "/w", "t", None, None)) == [
        "sbatch", "--parsable", "--chdir=/w", "--comment=firecrest-task=t", "--dependency=", "--", "-s.sh"]


def test_submit_export_list():
    # Each of these values arrived in the job's environment exactly as written (checked with `env` in a job).
    env = {"A": "$(id)", "B": "`id`", "C": "a=b", "D": "x y", "E": '"q"', "F": "'a,b'", "G": "", "H": "é"}
    export = words(slurm.Submit("/s", "/w", "t", None, env))[5]
    assert export == "--export=ALL,A=$(id),B=`id`,C=a=b,D=x y,E=\"q\",F='a,b',G=,H=é"


@pytest.mark.parametrize(("stdout", "jobid"), [("10\n", "10"), ("10;firecrest\n", "10")])
def test_submit_parses_parsable_output(stdout, jobid):
    assert slurm.Submit("/s", "/w", "t").result(ok(stdout)) == jobid


def test_submit_failure_keeps_sbatch_text():
    real = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"
    with pytest.raises(errors.RemoteError) as caught:
        slurm.Submit("/s", "/w", "t", "nosuch").result(ok(stderr=real + "\n", status=1))
    assert caught.value.error == real


def test_submit_refuses_unexpected_output():
    with pytest.raises(errors.RemoteError):
        slurm.Submit("/s", "/w", "t").result(ok("Submitted batch job 10\n"))


def test_check_env_flattens_like_upstream():
    assert slurm.check_env({"A": "1", "B": 2, "C": 1.5, "D": True, "_x9": "$(id)"}) == {
        "A": "1", "B": "2", "C": "1.5", "D": "True", "_x9": "$(id)"}


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (["A=1"], "JSON object"),
        ("A=1", "JSON object"),
        ({"1A": "x"}, "name"),
        ({"A-B": "x"}, "name"),
        ({"A B": "x"}, "name"),
        ({"": "x"}, "name"),
        ({"A": None}, "string, a number"),
        ({"A": ["x"]}, "string, a number"),
        ({"A": {"x": 1}}, "string, a number"),
        ({"A": "a\nb"}, "control character"),
        ({"A": "a\tb"}, "control character"),
        # Real sbatch: "A=a,b" gives A=a; "A=a,ZZ=1" also sets ZZ; a backslash does not escape the comma.
        ({"A": "a,b"}, "comma"),
        ({"A": "a,ZZ=1"}, "comma"),
        ({"A": "a\\,b"}, "comma"),
        # Real sbatch: "A=it's,B=1" gives A="it's,B=1" (and prints "Improperly formed environment variable").
        ({"A": "it's", "B": "1"}, "unbalanced quote"),
        ({"A": 'say "hi'}, "unbalanced quote"),
    ],
)
def test_check_env_refuses_what_sbatch_cannot_carry(env, reason):
    with pytest.raises(errors.BadRequest) as caught:
        slurm.check_env(env)
    assert reason in caught.value.error and caught.value.description == "Failed to submit job"


def test_submit_checks_env_itself():
    with pytest.raises(errors.BadRequest):
        slurm.Submit("/s", "/w", "t", None, {"A": "a,b"})


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
    assert words(slurm.FindTagged("t1")) == ["squeue", "--me", "--states=all", "--noheader", "--format=%i|%k"]
    for tag, jobid in [("t1", "10"), ("t2", "11"), ("aa", "49"), ("arr|x", "48"), ("arr", None), ("t", None)]:
        assert slurm.FindTagged(tag).result(ok(TAGGED)) == jobid
    assert slurm.FindTagged("t1").result(ok("")) is None


# --- scontrol -o show job ---------------------------------------------------------------------------------------

MIDDLE = (
    "UserId=alice(1001) GroupId=alice(1001) MCS_label=N/A Priority=4294901755 Nice=0 Account=users QOS=normal "
    "JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 "
    "RunTime=00:02:01 TimeLimit=00:10:00 TimeMin=N/A SubmitTime=2026-11-25T06:14:28 EligibleTime=2026-11-25T06:14:28 "
    "AccrueTime=2026-11-25T06:14:28 StartTime=2026-11-25T06:14:28 EndTime=2026-11-25T06:16:29 Deadline=N/A "
    "SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-25T06:14:28 Scheduler=Main Partition=normal "
    "AllocNode:Sid=localhost:3495 ReqNodeList=(null) ExcNodeList=(null) NodeList=localhost BatchHost=localhost "
    "NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* "
    "NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) "
    "DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)"
)
# Real lines (the shared middle above is identical in each); the job name of 11 and the comment of 44 are hostile.
JOB_11 = (f"JobId=11 JobName=weird|name StdOut=/x Command=/y {MIDDLE} Command=/home/alice/h7/s.sh "
          "WorkDir=/home/alice/h7 Comment=firecrest-task=t2  StdErr=/home/alice/h7/slurm-11.out StdIn=/dev/null "
          "StdOut=/home/alice/h7/slurm-11.out Power= ")
JOB_12 = (f"JobId=12 JobName=wrap {MIDDLE} Command=(null) WorkDir=/home/alice/h7 Comment=firecrest-task=t3  "
          "StdErr=/home/alice/h7/slurm-12.out StdIn=/dev/null StdOut=/home/alice/h7/slurm-12.out Power= ")
JOB_44 = (f"JobId=44 JobName=wrap {MIDDLE} Command=(null) WorkDir=/home/alice/h7 "
          "Comment=x StdOut=/evil Command=/evil2  StdErr=/home/alice/h7/e.err StdIn=/dev/null "
          "StdOut=/home/alice/h7/o 44.out Power= ")
JOB_8 = (f"JobId=8 JobName=wrap {MIDDLE} Command=(null) WorkDir=/home/alice StdErr=/home/alice/out 8 é.txt "
         "StdIn=/dev/null StdOut=/home/alice/out 8 é.txt Power= ")
JOB_45_TAIL = ("StdOut=/home/alice/h7/slurm-45.out CPU_max_freq=High  Power= MailUser=a@b MailType=END ")
JOB_15 = (f"JobId=15 ArrayJobId=15 ArrayTaskId=1-3 JobName=wrap {MIDDLE} Command=(null) WorkDir=/home/alice/h7 "
          "StdErr=/home/alice/h7/slurm-15_4294967294.out StdIn=/dev/null StdOut=/home/alice/h7/slurm-15_4294967294.out "
          "Power= ")
JOB_53 = (f"JobId=53 ArrayJobId=52 ArrayTaskId=1 ArrayTaskThrottle=1 JobName=wrap {MIDDLE} Command=/a.sh "
          "WorkDir=/home/alice StdErr=/e StdIn=/dev/null StdOut=/o Power= ")
JOB_17 = (f"JobId=17 HetJobId=16 HetJobOffset=1 JobName=wrap HetJobIdSet=16-17 {MIDDLE} Command=(null) "
          "WorkDir=/home/alice/h7 StdErr=/e17 StdIn=/dev/null StdOut=/o17 Power= ")


def test_job_files_anchor_on_the_right():
    assert slurm.job_files(JOB_11) == {"job_file": "/home/alice/h7/s.sh",
                                       "job_file_out": "/home/alice/h7/slurm-11.out",
                                       "job_file_err": "/home/alice/h7/slurm-11.out"}


def test_job_files_of_a_wrap_job_and_a_hostile_comment():
    assert slurm.job_files(JOB_12)["job_file"] == "command-not-found"
    assert slurm.job_files(JOB_44) == {"job_file": "command-not-found", "job_file_out": "/home/alice/h7/o 44.out",
                                       "job_file_err": "/home/alice/h7/e.err"}


def test_job_files_paths_with_spaces_and_keys_after_stdout():
    assert slurm.job_files(JOB_8)["job_file_out"] == "/home/alice/out 8 é.txt"
    assert slurm.job_files(JOB_8)["job_file_err"] == "/home/alice/out 8 é.txt"
    assert slurm.job_files(f"JobId=45 JobName=x {JOB_45_TAIL}")["job_file_out"] == "/home/alice/h7/slurm-45.out"


def test_job_files_missing_keys():
    assert slurm.job_files("JobId=1 JobName=x") == slurm.NOT_FOUND


def test_job_files_command():
    command = slurm.JobFiles("11")
    assert words(command) == ["scontrol", "-o", "show", "job", "11"]
    assert command.result(ok(JOB_11 + "\n"))["job_file"] == "/home/alice/h7/s.sh"
    with pytest.raises(errors.RemoteError):  # real: bob asking for alice's job, or an unknown id
        command.result(ok(stderr="slurm_load_jobs error: Invalid job id specified\n", status=1))


def test_all_job_files_by_squeue_id():
    command = slurm.AllJobFiles()
    assert words(command) == ["scontrol", "-o", "show", "job"]
    found = command.result(ok("\n".join([JOB_11, JOB_12, JOB_15, JOB_53, JOB_17]) + "\n"))
    assert list(found) == ["11", "12", "15_[1-3]", "52_1", "16+1"]
    assert found["52_1"]["job_file"] == "/a.sh" and found["16+1"]["job_file_out"] == "/o17"
    assert command.result(ok("No jobs in the system\n")) == {}


def test_tail_and_files():
    assert words(slurm.Tail("-o 1.out", 1000)) == ["tail", "-c", "1000", "--", "-o 1.out"]
    assert slurm.Tail("/o", 3).result(Output(0, b"ab\xff", b"")) == "ab\ufffd"
    assert words(slurm.JobDir("-d $(x)")) == ["mkdir", "-p", "--", "-d $(x)"]
    assert words(slurm.WriteScript("/d/it's")) == ["dd", "of=/d/it's", "bs=1M", "status=none"]


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
        row = slurm.job_row(job, NOW, UTC)
        if row["jobid"] in expected:
            assert row == expected[row["jobid"]]


def test_queue_filters_like_squeue_and_sorts():
    rows = slurm.queue_rows(SQUEUE_JSON, "alice", None, NOW, UTC)
    assert [r["jobid"] for r in rows] == ["10", "11", "13", "14", "15_[1-3]", "16+0", "16+1"]  # no COMPLETED, no bob
    assert all(list(r) == list(FIELDS) for r in rows)
    assert [r["jobid"] for r in slurm.queue_rows(SQUEUE_JSON, None, None, NOW)][-1] == "56_1"


@pytest.mark.parametrize(
    ("jobs", "found"),
    [(["16"], ["16+0", "16+1"]), (["16+1"], ["16+1"]), (["15"], ["15_[1-3]"]), (["15_[1-3]"], ["15_[1-3]"]),
     (["56_1"], ["56_1"]), (["56"], ["56_1"]), (["57"], ["56_1"]), (["7"], []), (["999"], []),
     (["13", "10"], ["10", "13"])],
)
def test_queue_job_selection(jobs, found):
    assert [r["jobid"] for r in slurm.queue_rows(SQUEUE_JSON, None, jobs, NOW)] == found


def test_queue_times():
    running = dict(SQUEUE_JSON["jobs"][1])
    assert slurm.job_row(running, running["start_time"] + 3 * 3600 + 5)["time"] == "3:00:05"
    assert slurm.job_row({**running, "time_limit": None}, NOW)["time_left"] == "UNLIMITED"
    assert slurm.job_row({**running, "time_limit": 0xFFFFFFFE}, NOW)["time_left"] == "NOT_SET"
    suspended = {**running, "job_state": "SUSPENDED", "pre_sus_time": 75}
    assert slurm.job_row(suspended, NOW)["time"] == "1:15"
    assert [slurm.squeue_secs(s) for s in (0, 59, 3600, 86400 + 61, -1)] == ["0:00", "0:59", "1:00:00",
                                                                              "1-00:01:01", "INVALID"]


def test_queue_command():
    command = slurm.Queue("alice", ["10", "16+1"])
    assert words(command) == ["squeue", "--json", "--user=alice", "--jobs=10,16+1"]
    assert words(slurm.Queue(None, None)) == ["squeue", "--json"]
    assert [r["jobid"] for r in command.result(ok(json.dumps(SQUEUE_JSON)))] == ["10", "16+1"]
    # Without --json, real squeue exits 1 for a single unknown id; a later squeue may do so with --json too.
    assert command.result(ok(stderr="slurm_load_jobs error: Invalid job id specified\n", status=1)) == []
    with pytest.raises(errors.RemoteError):
        command.result(ok(stderr="squeue: error: Unable to contact slurm controller\n", status=1))


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
    rows = slurm.Accounting().result(ok(SACCT))
    assert [r["jobid"] for r in rows] == ["7", "11", "12", "16+0", "15_[1-3]"]
    assert rows[0]["name"] == "we|ird $(x)" and rows[1]["name"] == "weird|name StdOut=/x Command=/y"
    assert rows[2] == {"jobid": "12", "partition": "normal", "name": "wrap", "user": "alice", "state": "RUNNING",
                       "start_time": "2026-11-25T06:14:28", "time": "00:03:51", "cpu_time": "00:03:51",
                       "elapsed_time": "00:03:51", "termination_time": "Unknown", "time_left": "Unknown",
                       "nodes": "1", "nodelist": "localhost", "exit_code": "0:0"}
    assert rows[3]["state"] == "CANCELLED by 1001" and rows[3]["nodelist"] == "None assigned"
    assert slurm.Accounting(["999999"]).result(ok("")) == []  # real: unknown id, exit 0, no output


def test_accounting_command():
    fmt = "--format=jobid,partition,user,state,start,cputime,end,nnodes,nodelist,exitcode,elapsed,jobname"
    assert words(slurm.Accounting()) == ["sacct", "-X", "--noheader", "--parsable2", fmt]
    assert words(slurm.Accounting(["12", "15_[1-3]"])) == [
        "sacct", "-X", "--noheader", "--parsable2", fmt, "--starttime=1970-01-02", "--jobs=12,15_[1-3]"]
    assert words(slurm.Accounting(["12"], "now-2days", "today"))[-3:] == [
        "--starttime=now-2days", "--endtime=today", "--jobs=12"]


@pytest.mark.parametrize(
    "value",
    ["2026-11-25", "2026-11-25T06:14", "2026-11-25T06:14:28", "2026-11-25T6:14", "1125", "112526", "11/25",
     "11/25/26", "11/25-06:14", "11/25/26-06:14:00", "06:14", "06:14:28", "6:14", "now", "now-1", "now+0",
     "now-1hours", "now-2days", "now-3week", "now-30minutes", "now-10seconds", "today", "midnight", "noon",
     "tomorrow", "fika", "teatime", " 1125 "],
)
def test_check_time_accepts_what_sacct_accepts(value):
    assert slurm.check_time(value) == value.strip()


@pytest.mark.parametrize(
    "value",
    # Each of these made the real sacct exit 1 with "Invalid time specification (pos=N): <value>".
    ["garbage", "11/25/2026", "now-1s", "now-1h", "now-", "now-x", "nowx", "elevenses", "yesterday", "Today",
     "24:00", "23:60", "1", "12345", "-1", "0", "2026", "2026-11", "2026-13-45", "2026-1-5", "13/01", "1301",
     "2026-11-25T24:00", "2026-11-25T06", "2026-11-25T06:14:28.5", "--all", "now;id"],
)
def test_check_time_refuses(value):
    with pytest.raises(errors.BadRequest) as caught:
        slurm.check_time(value)
    assert "Invalid time" in caught.value.error


def test_accounting_checks_times_itself():
    with pytest.raises(errors.BadRequest):
        slurm.Accounting(None, "--all")


# --- scancel ----------------------------------------------------------------------------------------------------


def test_cancel_texts():
    command = slurm.Cancel("44")
    assert words(command) == ["scancel", "-v", "44"]
    assert command.result(ok(stderr="scancel: Terminating job 44\n")) == "scancel: Terminating job 44"
    # Real: unknown job and already finished job both exit 0, the error is only in the text.
    unknown = ("scancel: Terminating job 999999\n"
               "scancel: error: Kill job error on job id 999999: Invalid job id specified\n")
    text = command.result(ok(stderr=unknown))
    assert slurm.cancel_error(text) == "Kill job error on job id 999999: Invalid job id specified"
    done = "scancel: Terminating job 11\nscancel: error: Kill job error on job id 11: Job/step already completing or completed"  # noqa: E501
    assert slurm.cancel_error(done) == "Kill job error on job id 11: Job/step already completing or completed"
    assert slurm.cancel_error("scancel: Terminating job 44") is None
    assert slurm.cancel_error("") is None
    assert slurm.cancel_error("some error") == "some error"


def test_cancel_of_another_users_job():
    # Real: bob cancelling alice's job exits 210.
    real = "scancel: Terminating job 44\nscancel: error: Kill job error on job id 44: Access/permission denied\n"
    with pytest.raises(errors.PermissionDenied) as caught:
        slurm.Cancel("44").result(ok(stderr=real, status=210))
    assert caught.value.error == "User does not have permission to cancel job"


# --- scontrol: nodes, partitions, reservations -----------------------------------------------------------------

NODE = (
    "NodeName=localhost Arch=x86_64 CoresPerSocket=1  CPUAlloc=1 CPUEfctv=8 CPUTot=8 CPULoad=0.16 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=127.0.0.1 NodeHostName=localhost "
    "Version=22.05.8 OS=Linux 6.18.44-fc-v657 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=21694 AllocMem=0 FreeMem=22756 "
    "Sockets=8 Boards=1 State=MIXED ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A "
    "Partitions=normal,xfer  BootTime=2026-11-25T03:26:32 SlurmdStartTime=2026-11-25T06:11:33 "
    "LastBusyTime=2026-11-25T06:12:14 CfgTRES=cpu=8,mem=21694M,billing=8 AllocTRES=cpu=1 CapWatts=n/a "
    "CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s"
)
# The same node edited as a drained node with features (the stack's node has none).
NODE_DRAINED = (NODE.replace("localhost", "nid01").replace("ActiveFeatures=(null)", "ActiveFeatures=gpu,ssd")
                .replace("State=MIXED", "State=IDLE+DRAIN") + " Reason=maintenance State=DOWN [root@2026-11-25]")


def test_nodes():
    command = slurm.Nodes()
    assert words(command) == ["scontrol", "-a", "show", "-o", "node"]
    assert command.result(ok(NODE + "\n" + NODE_DRAINED + "\n")) == [
        {"NodeName": "localhost", "ActiveFeatures": [], "Partitions": ["normal", "xfer"], "State": ["MIXED"]},
        {"NodeName": "nid01", "ActiveFeatures": ["gpu", "ssd"], "Partitions": ["normal", "xfer"],
         "State": ["IDLE", "DRAIN"]},
    ]


@pytest.mark.parametrize("names", [["n[1-2]", "n1", "n[1-2]"], ["nid[001-004,7]-gpu,x.y"], ["a_b", "9z"]])
def test_nodes_by_name_are_one_word_after_the_separator(names):
    expected = ",".join(dict.fromkeys(h for n in names for h in names_module.TOP_LEVEL_COMMA.split(n)))
    assert words(slurm.Nodes(names)) == ["scontrol", "-a", "show", "-o", "node", "--", expected]


@pytest.mark.parametrize("hostile", ["--version", "-x", "a b", "$(id)", "n[1-", "n[a-b]", "a,,b", "é", "n²", "",
                                     "x=y", "a;b", "n[1-2]]"])
def test_node_names_outside_hostlist_syntax_are_refused(hostile):
    with pytest.raises(errors.BadRequest) as caught:
        slurm.Nodes([hostile])
    assert "'nodes'" in caught.value.error


def test_unknown_node_is_a_clear_error():
    # Real: `scontrol -a show -o node localhost,nosuch` prints the node and "Node nosuch not found" on stdout, exit 1.
    with pytest.raises(errors.FirecrestError) as caught:
        slurm.Nodes(["localhost", "nosuch"]).result(ok(NODE + "\nNode nosuch not found\n", status=1))
    assert caught.value.error == "Node nosuch not found"


PARTITIONS = """\
PartitionName=normal AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=8 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=8,mem=21694M,node=1,billing=8
PartitionName=xfer AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=1-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=8 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=8,mem=21694M,node=1,billing=8
"""  # noqa: E501


def test_partitions():
    command = slurm.Partitions()
    assert words(command) == ["scontrol", "-a", "show", "-o", "partition"]
    assert command.result(ok(PARTITIONS)) == [
        {"PartitionName": "normal", "State": "UP", "TotalCPUs": "8", "TotalNodes": "1", "Default": "YES"},
        {"PartitionName": "xfer", "State": "UP", "TotalCPUs": "8", "TotalNodes": "1", "Default": "NO"},
    ]


RESERVATION = (
    "ReservationName=h7test StartTime=2026-11-25T07:19:29 EndTime=2026-11-25T08:19:29 Duration=01:00:00 "
    "Nodes=localhost NodeCnt=1 CoreCnt=8 Features=(null) PartitionName=(null) Flags=IGNORE_JOBS,SPEC_NODES "
    "TRES=cpu=8 Users=alice Groups=(null) Accounts=(null) Licenses=(null) State=INACTIVE BurstBuffer=(null) "
    "Watts=n/a MaxStartDelay=(null)"
)


def test_reservations():
    command = slurm.Reservations()
    assert words(command) == ["scontrol", "-a", "show", "-o", "reservation"]
    assert command.result(ok("No reservations in the system\n")) == []
    with_features = RESERVATION.replace("h7test", "maint").replace("Features=(null)", "Features=gpu&ssd")
    assert command.result(ok(RESERVATION + "\n" + with_features + "\n")) == [
        {"ReservationName": "h7test", "State": "INACTIVE", "Nodes": "localhost", "StartTime": "2026-11-25T07:19:29",
         "EndTime": "2026-11-25T08:19:29", "Features": []},
        {"ReservationName": "maint", "State": "INACTIVE", "Nodes": "localhost", "StartTime": "2026-11-25T07:19:29",
         "EndTime": "2026-11-25T08:19:29", "Features": ["gpu", "ssd"]},
    ]


def test_every_program_is_allowed_on_the_login_node():
    allowed_file = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "allowed-commands"
    allowed = {line.strip() for line in allowed_file.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    commands = [slurm.Submit("/s", "/w", "t"), slurm.FindTagged("t"), slurm.JobFiles("1"), slurm.AllJobFiles(),
                slurm.Queue(), slurm.Accounting(), slurm.Cancel("1"), slurm.Nodes(), slurm.Partitions(),
                slurm.Reservations(), slurm.Tail("/f", 1), slurm.JobDir("/d"), slurm.WriteScript("/f")]
    assert {words(c)[0] for c in commands} <= allowed
