"""sbatch: the submission of a job, and what sbatch does with the values it is given.

A submission carries the task's id in its comment, so that a task that runs again after a restart finds its
job (jobs.py FindTagged) instead of submitting a second one. The values that reach sbatch's options are checked here
again, whatever the caller did, because sbatch parses some of them itself: the `--export` list (its own
splitting and quoting) and `--dependency` (which must name only what compute allowed).
"""

from __future__ import annotations

import re

from common import errors
from common.commands import Command, Output

from .jobs import TASK_PREFIX

SUBMIT_FAILED = "Failed to submit job"

# ---------------------------------------------------------------------------------------------------------------
# --export: the job's environment

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _export_safe(value: str) -> str | None:
    """Why sbatch would not give `value` to the job literally inside `--export=ALL,K=V,...`, or None.

    sbatch (22.05, _find_quote_token) splits the list on commas outside quotes; `'` and `"` toggle a quoted
    state each but are kept in the value. So a comma outside quotes starts a new variable, and an unclosed
    quote swallows every following variable into this one. Backslashes escape nothing. All else ($(), `, =,
    spaces, non-ASCII) arrives as it is.
    """
    single = double = False
    for ch in value:
        if ch == "'":
            single = not single
        elif ch == '"':
            double = not double
        elif ch == "," and not single and not double:
            return "a comma outside quotes (sbatch --export would split the value there)"
    if single or double:
        return "an unbalanced quote (sbatch --export would merge the following variables into it)"
    return None


def check_env(env: object) -> dict[str, str]:
    """The `env` form field (already JSON-decoded) as the variables sbatch will set, or BadRequest."""
    if not isinstance(env, dict):
        raise errors.BadRequest("'env' must be a JSON object of variable names to values", SUBMIT_FAILED)
    checked: dict[str, str] = {}
    for key, raw in env.items():
        if not ENV_NAME.fullmatch(key):
            raise errors.BadRequest(f"Invalid environment variable name {key[:64]!r}", SUBMIT_FAILED)
        if not isinstance(raw, str | int | float):  # bool is an int
            raise errors.BadRequest(f"The value of {key} must be a string, a number or a boolean", SUBMIT_FAILED)
        value = str(raw)  # as upstream flattened the JSON: true -> "True", 1.5 -> "1.5"
        if CONTROL.search(value):
            raise errors.BadRequest(f"The value of {key} contains a control character", SUBMIT_FAILED)
        reason = _export_safe(value)
        if reason:
            raise errors.BadRequest(f"The value of {key} contains {reason}", SUBMIT_FAILED)
        checked[key] = value
    return checked


# ---------------------------------------------------------------------------------------------------------------
# --dependency: its syntax (whose jobs it may name is compute's rule, compute/dependency.py)

_ID = r"[0-9]{1,18}(?:_[0-9]{1,9})?"
SPEC = re.compile(rf"(?:(?:after|afterany|afterburstbuffer|aftercorr|afternotok|afterok):{_ID}(?:\+[0-9]{{1,9}})?"
                  rf"(?::{_ID}(?:\+[0-9]{{1,9}})?)*|singleton)", re.ASCII)
SEPARATORS = re.compile(r"[,?]")


def check_dependency(spec: str) -> list[str]:
    """The job ids (without array index) of a dependency expression (`afterok:1:2,afterany:3`, `?` for any-of),
    or a 400 when it is not one Slurm documents."""
    if not spec:
        return []
    if len(spec) > 1024 or ("," in spec and "?" in spec) or not all(SPEC.fullmatch(p) for p in SEPARATORS.split(spec)):
        raise errors.BadRequest(f"Invalid dependency {spec[:64]!r}: use type:jobid[:jobid...] with types after, "
                                "afterany, afterok, afternotok, aftercorr, afterburstbuffer, or singleton",
                                SUBMIT_FAILED)
    return sorted({re.split(r"[_+]", i)[0] for part in SEPARATORS.split(spec) for i in part.split(":")[1:]}, key=int)


# ---------------------------------------------------------------------------------------------------------------
# The commands


class Submit(Command[str]):
    """sbatch; returns the job id (a string, as the contract has it). With `script` None, sbatch reads the script
    from its standard input."""

    name = "sbatch"

    def __init__(self, script: str | None, workdir: str, tag: str, account: str | None = None,
                 env: dict[str, str] | None = None, dependency: str = "") -> None:
        self.script, self.workdir, self.tag, self.account = script, workdir, tag, account
        self.env = check_env(env) if env else {}  # again here: the argv must never depend on the caller's care
        check_dependency(dependency)  # its syntax, again here (the jobs' owner was checked by the request)
        self.dependency = dependency

    def argv(self) -> list[str]:
        # --dependency always: the command line overrides the script's directives (see compute/dependency.py).
        words = ["sbatch", "--parsable", f"--chdir={self.workdir}", f"--comment={TASK_PREFIX}{self.tag}",
                 f"--dependency={self.dependency}"]
        if self.account:
            words.append(f"--account={self.account}")
        if self.env:
            words.append("--export=" + ",".join(["ALL", *(f"{k}={v}" for k, v in self.env.items())]))
        return [*words, "--", *([self.script] if self.script is not None else [])]

    def parse(self, result: Output) -> str:
        # --parsable prints "id" or "id;cluster"; warnings go to stderr.
        lines = result.out.strip().splitlines()
        jobid = lines[-1].split(";")[0].strip() if lines else ""
        if not jobid.isdigit():
            raise errors.RemoteError(f"Unexpected sbatch output: {result.out.strip()[:200]!r}")
        return jobid
