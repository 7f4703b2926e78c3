"""common/slurm/jobfiles.py: scontrol -o show job lines captured from the real Slurm 22.05 of the stack."""

from __future__ import annotations

import pytest
from test_slurm_submit import ok, words

from common import errors, files
from common.commands import Output
from common.slurm import jobfiles

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
    assert jobfiles.job_files(JOB_11) == {"job_file": "/home/alice/h7/s.sh",
                                       "job_file_out": "/home/alice/h7/slurm-11.out",
                                       "job_file_err": "/home/alice/h7/slurm-11.out"}


def test_job_files_of_a_wrap_job_and_a_hostile_comment():
    assert jobfiles.job_files(JOB_12)["job_file"] == "command-not-found"
    assert jobfiles.job_files(JOB_44) == {"job_file": "command-not-found", "job_file_out": "/home/alice/h7/o 44.out",
                                       "job_file_err": "/home/alice/h7/e.err"}


def test_job_files_paths_with_spaces_and_keys_after_stdout():
    assert jobfiles.job_files(JOB_8)["job_file_out"] == "/home/alice/out 8 é.txt"
    assert jobfiles.job_files(JOB_8)["job_file_err"] == "/home/alice/out 8 é.txt"
    assert jobfiles.job_files(f"JobId=45 JobName=x {JOB_45_TAIL}")["job_file_out"] == "/home/alice/h7/slurm-45.out"


def test_job_files_missing_keys():
    assert jobfiles.job_files("JobId=1 JobName=x") == jobfiles.NOT_FOUND


def test_job_files_command():
    command = jobfiles.JobFiles("11")
    assert words(command) == ["scontrol", "-o", "show", "job", "11"]
    assert command.result(ok(JOB_11 + "\n"))["job_file"] == "/home/alice/h7/s.sh"
    with pytest.raises(errors.RemoteError):  # real: bob asking for alice's job, or an unknown id
        command.result(ok(stderr="slurm_load_jobs error: Invalid job id specified\n", status=1))


def test_all_job_files_by_squeue_id():
    command = jobfiles.AllJobFiles()
    assert words(command) == ["scontrol", "-o", "show", "job"]
    found = command.result(ok("\n".join([JOB_11, JOB_12, JOB_15, JOB_53, JOB_17]) + "\n"))
    assert list(found) == ["11", "12", "15_[1-3]", "52_1", "16+1"]
    assert found["52_1"]["job_file"] == "/a.sh" and found["16+1"]["job_file_out"] == "/o17"
    assert command.result(ok("No jobs in the system\n")) == {}


def test_tail_and_files():
    assert words(jobfiles.Tail("-o 1.out", 1000)) == ["tail", "-c", "1000", "--", "-o 1.out"]
    assert jobfiles.Tail("/o", 3).result(Output(0, b"ab\xff", b"")) == "ab\ufffd"
    assert words(files.Mkdir("-d $(x)", parents=True)) == ["mkdir", "-p", "--", "-d $(x)"]
    assert words(files.Upload("/d", "it's")) == ["dd", "of=/d/it's", "bs=1M", "status=none"]
