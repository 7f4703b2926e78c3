"""The `env` form field of a submission: the variables sbatch's `--export` gives the job, checked so that
sbatch hands each one to the job literally (or the request is a 400 that says why)."""

from __future__ import annotations

import re

from common import errors, params

SUBMIT_FAILED = "Failed to submit job"
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


def parse_env(raw: str) -> dict[str, str]:
    """The form's JSON text (bounded: size, nesting, number length) as checked variables."""
    return check_env(params.json_value(raw, "env", SUBMIT_FAILED))
