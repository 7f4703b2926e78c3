"""How an external transfer's step ends other than by going on: both directions raise these."""

from __future__ import annotations

from common.errors import FirecrestError


class TransferFailed(FirecrestError):
    """The transfer itself went wrong (not the request): the task ends with this reason."""


class Stalled(Exception):
    """The client stopped sending an upload's segments: stop pulling, and wait for the whole upload."""


class JobLost(TransferFailed):
    """Slurm has no job for the transfer while its srun still waits: a controller that restarted forgot the job it
    had accepted, and srun would wait for its allocation forever."""

    def __init__(self) -> None:
        super().__init__("The scheduler lost the transfer's job (its controller restarted and forgot it)")
