"""common/slurm/submit.py (and the job ids every command checks): sbatch's command line and parser, on outputs
captured from the real Slurm 22.05 of the stack; every program the Slurm commands run is allowed on the login node."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from common import errors, files
from common.commands import Output
from common.slurm import accounting, jobfiles, jobs, queue, resources, submit

HOSTILE = ["-rf", "--help", "a b", "$(id)", "it's", '"q"', "`id`", "x;y", "a|b"]


def words(command) -> list[str]:
    """The argv as the login node's wrapper will split it (after `ID=rid timeout -k 2 5`)."""
    split = shlex.split(command.line(5, "rid"))
    assert split[:5] == ["ID=rid", "timeout", "-k", "2", "5"]
    return split[5:]


def ok(stdout: str = "", stderr: str = "", status: int = 0) -> Output:
    return Output(status, stdout.encode(), stderr.encode())



# --- job ids ----------------------------------------------------------------------------------------------------


def test_commands_refuse_invalid_ids():
    for make in (lambda: jobs.Cancel("-1"), lambda: jobfiles.JobFiles("1,2"), lambda: queue.Queue(None, ["x"]),
                 lambda: accounting.Accounting(["--all"])):
        with pytest.raises(errors.BadRequest):
            make()


# --- sbatch -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_submit_keeps_every_value_one_word(hostile):
    command = submit.Submit(f"/home/alice/{hostile}", f"/home/{hostile}", "abc123", hostile, {"V": "x y"})
    assert words(command) == ["sbatch", "--parsable", f"--chdir=/home/{hostile}", "--comment=firecrest-task=abc123",
                              "--dependency=", f"--account={hostile}", "--export=ALL,V=x y", "--",
                              f"/home/alice/{hostile}"]


def test_submit_without_account_and_env():
    assert words(submit.Submit("-s.sh", "/w", "t", None, None)) == [
        "sbatch", "--parsable", "--chdir=/w", "--comment=firecrest-task=t", "--dependency=", "--", "-s.sh"]


def test_submit_export_list():
    # Each of these values arrived in the job's environment exactly as written (checked with `env` in a job).
    env = {"A": "$(id)", "B": "`id`", "C": "a=b", "D": "x y", "E": '"q"', "F": "'a,b'", "G": "", "H": "é"}
    export = words(submit.Submit("/s", "/w", "t", None, env))[5]
    assert export == "--export=ALL,A=$(id),B=`id`,C=a=b,D=x y,E=\"q\",F='a,b',G=,H=é"


@pytest.mark.parametrize(("stdout", "jobid"), [("10\n", "10"), ("10;firecrest\n", "10")])
def test_submit_parses_parsable_output(stdout, jobid):
    assert submit.Submit("/s", "/w", "t").result(ok(stdout)) == jobid


def test_submit_failure_keeps_sbatch_text():
    real = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"
    with pytest.raises(errors.RemoteError) as caught:
        submit.Submit("/s", "/w", "t", "nosuch").result(ok(stderr=real + "\n", status=1))
    assert caught.value.error == real


def test_submit_refuses_unexpected_output():
    with pytest.raises(errors.RemoteError):
        submit.Submit("/s", "/w", "t").result(ok("Submitted batch job 10\n"))


def test_check_env_flattens_like_upstream():
    assert submit.check_env({"A": "1", "B": 2, "C": 1.5, "D": True, "_x9": "$(id)"}) == {
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
        submit.check_env(env)
    assert reason in caught.value.error and caught.value.description == "Failed to submit job"


def test_submit_checks_env_itself():
    with pytest.raises(errors.BadRequest):
        submit.Submit("/s", "/w", "t", None, {"A": "a,b"})


# --- the login node ---------------------------------------------------------------------------------------------


def allowed_programs() -> set[str]:
    allowed_file = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "allowed-commands"
    return {line.strip() for line in allowed_file.read_text().splitlines() if line.strip() and not line.startswith("#")}


def test_every_program_is_allowed_on_the_login_node():
    allowed = allowed_programs()
    commands = [submit.Submit("/s", "/w", "t"), jobs.FindTagged("t"), jobfiles.JobFiles("1"), jobfiles.AllJobFiles(),
                queue.Queue(), accounting.Accounting(), jobs.Cancel("1"), resources.Nodes(), resources.Partitions(),
                resources.Reservations(), jobfiles.Tail("/f", 1), files.Mkdir("/d", parents=True),
                files.Upload("/", "f")]
    assert {words(c)[0] for c in commands} <= allowed


def test_the_other_slurm_commands_are_allowed_too():
    commands = [jobs.FindJob("t"), jobs.CancelJobs(["1"]), queue.RecentlyFinished("alice", 1),
                queue.QueuedJobs("alice", ["1"]), accounting.AccountedJobs("alice", ["1"])]
    assert {words(c)[0] for c in commands} <= allowed_programs()
