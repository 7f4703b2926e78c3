"""common/slurm/output.py: the job as scontrol shows it (real 22.05 lines), the size probe and the ranged read."""

from __future__ import annotations

import pytest
from test_slurm_jobfiles import JOB_11, JOB_17, JOB_44, JOB_53, MIDDLE
from test_slurm_submit import ok, words

from common import errors
from common.commands import Output
from common.slurm.output import FileSize, JobView, ReadRange, ShowJob, job_view

# A real line of a running job whose stderr path holds a space (captured from the stack).
RUNNING = ("JobId=3618 JobName=wrap UserId=alice(1001) GroupId=alice(1001) MCS_label=N/A Priority=4294901758 Nice=0 "
           "Account=users QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 "
           "Reboot=0 ExitCode=0:0 RunTime=00:00:00 TimeLimit=1-00:00:00 TimeMin=N/A Partition=normal "
           "NodeList=localhost Command=(null) WorkDir=/home/alice StdErr=/home/alice/err wrap.txt StdIn=/dev/null "
           "StdOut=/home/alice/out-3618.txt Power= ")
FAKE = ("UserId=bob(1002) GroupId=bob(1002) MCS_label=N/A Priority=1 Nice=0 Account=users QOS=normal "
        "JobState=FAILED Reason=None")


def test_job_view_of_a_running_job():
    assert job_view(RUNNING) == JobView("3618", "alice", "RUNNING", "0:0", "/home/alice/out-3618.txt",
                                        "/home/alice/err wrap.txt")
    assert not job_view(RUNNING).finished and not job_view(RUNNING).pending


def test_job_view_of_finished_array_and_het_jobs():
    view = job_view(JOB_53)
    assert (view.jobid, view.state, view.exit_code, view.stdout) == ("52_1", "COMPLETED", "0:0", "/o")
    assert view.finished
    assert job_view(JOB_17).jobid == "16+1"


def test_job_view_ignores_fake_fields_in_the_name_and_the_comment():
    hostile = (f"JobId=7 JobName=x {FAKE} {MIDDLE.replace('JobState=COMPLETED', 'JobState=RUNNING')} "
               f"Command=(null) WorkDir=/home/alice Comment=y {FAKE} Command=/z  StdErr=/e StdIn=/dev/null "
               "StdOut=/o Power= ")
    view = job_view(hostile)
    assert (view.user, view.state, view.stdout, view.stderr) == ("alice", "RUNNING", "/o", "/e")
    assert job_view(JOB_44).stdout == "/home/alice/h7/o 44.out"


def test_job_view_of_a_line_without_its_fields():
    assert job_view("JobId=1 JobName=x") is None
    assert job_view("No jobs in the system") is None


def test_show_job_argv_and_results():
    assert words(ShowJob("12_3")) == ["scontrol", "-o", "show", "job", "12_3"]
    assert ShowJob("11").result(ok(JOB_11 + "\n")).stdout == "/home/alice/h7/slurm-11.out"
    # Another user's job (PrivateData=jobs) and an unknown one read the same.
    assert ShowJob("11").result(ok(stderr="slurm_load_jobs error: Invalid job id specified\n", status=1)) is None
    with pytest.raises(errors.RemoteError):
        ShowJob("11").result(ok(stderr="slurm_load_jobs error: Unable to contact slurm controller\n", status=1))


def test_show_job_picks_the_asked_job_and_refuses_a_whole_array():
    task_2 = JOB_53.replace("JobId=53", "JobId=54").replace("ArrayTaskId=1", "ArrayTaskId=2")
    lines = ok(f"{JOB_53}\n{task_2}\n")
    assert ShowJob("52_2").result(lines).jobid == "52_2"
    assert ShowJob("52").result(lines) is None  # every task of the array: no one file is meant
    assert ShowJob("52").result(ok(JOB_53 + "\n")) is None
    assert ShowJob("53").result(ok(JOB_53 + "\n")).jobid == "52_1"  # the task's own id (its SLURM_JOB_ID)
    assert ShowJob("17").result(ok(JOB_17 + "\n")).jobid == "16+1"


@pytest.mark.parametrize("hostile", ["1;id", "$(id)", "-1", "1 2", "1\n2", "١٢", "`id`", "1,2"])
def test_show_job_refuses_what_is_not_a_job_id(hostile):
    with pytest.raises(errors.BadRequest):
        ShowJob(hostile)


def test_file_size():
    command = FileSize("/home/alice/o 1.txt")
    assert words(command) == ["stat", "--dereference", "-c", "%s", "--", "/home/alice/o 1.txt"]
    assert command.result(ok("42\n")) == 42
    assert command.result(ok(stderr="stat: cannot statx '/x': No such file or directory", status=1)) is None
    with pytest.raises(errors.PermissionDenied):
        command.result(ok(stderr="stat: cannot statx '/x': Permission denied", status=1))


def test_read_range_argv_takes_the_path_as_one_word():
    command = ReadRange("/home/alice/a b=$(id)`x`;'q'.out", 10, 70000)
    assert words(command) == ["dd", "if=/home/alice/a b=$(id)`x`;'q'.out", "iflag=skip_bytes,count_bytes", "skip=10",
                              "count=70000", "bs=65536", "status=none"]
    assert words(ReadRange("/o", 0, 5))[-2] == "bs=5"


def test_read_range_results():
    command = ReadRange("/o", 0, 4)
    assert command.result(Output(0, b"\x00\xff\r\n", b"")) == b"\x00\xff\r\n"
    assert command.result(ok(stderr="dd: failed to open '/o': No such file or directory", status=1)) is None
    with pytest.raises(errors.PermissionDenied):
        command.result(ok(stderr="dd: failed to open '/o': Permission denied", status=1))
    with pytest.raises(ValueError):
        ReadRange("/o", -1, 4)

