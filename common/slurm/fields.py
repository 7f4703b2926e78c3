"""What several Slurm commands share: job ids as they may appear in an argv, and the fields of squeue's JSON.

Kept apart so that the other modules import it and never one another's internals.
"""

from __future__ import annotations

import re
from typing import Any

from common import errors
from common.values import valid_job_id

INFINITE, NO_VAL = 0xFFFFFFFF, 0xFFFFFFFE
# squeue without --states lists pending, running, suspended and completing jobs; --json (22.05) lists every job
# slurmctld still holds, so the finished ones are left out by the callers.
FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
            "OUT_OF_MEMORY", "REVOKED", "STAGE_OUT"}
PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SPECIAL_EXIT", "RESV_DEL_HOLD"}


def job_ids(jobs: list[str] | None) -> list[str]:
    """The ids, each checked: they become option values, and a checked id can never read as an option or carry
    a second list item."""
    for jobid in jobs or []:
        if not valid_job_id(jobid):
            raise errors.BadRequest(f"{jobid[:64]} is not a valid job ID")
    return list(jobs or [])


def submitted_id(jobid: str) -> str:
    """What sbatch printed for a queue id: `12_[1-3]`, `12_1` and `12+0` were all submitted as `12`."""
    return re.split(r"[_+]", jobid, maxsplit=1)[0]


def number(value: Any) -> int | None:
    """An integer field of the JSON; None when unset (newer Slurm wraps them as {set, infinite, number})."""
    if isinstance(value, dict):
        if value.get("infinite"):
            return INFINITE
        return int(value.get("number", 0)) if value.get("set", True) else None
    return None if value is None else int(value)


def state(job: dict[str, Any]) -> str:
    """A job's state (newer Slurm gives a list of flags, the state first)."""
    found = job.get("job_state", "")
    return str(found[0] if isinstance(found, list) and found else found or "")
