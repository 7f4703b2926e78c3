"""The `env` form field of a submission: JSON text from the request, turned into the variables sbatch's
`--export` gives the job. What sbatch does with each value (and so what is refused) is sbatch's rule, kept with
the command that passes them (common/slurm/submit.py check_env)."""

from __future__ import annotations

from common import values
from common.slurm.submit import SUBMIT_FAILED, check_env


def parse_env(raw: str) -> dict[str, str]:
    """The form's JSON text (bounded: size, nesting, number length) as checked variables."""
    return check_env(values.json_value(raw, "env", SUBMIT_FAILED))
