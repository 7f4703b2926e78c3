"""How an external transfer's step ends other than by going on: both directions raise these."""

from __future__ import annotations

from common.errors import FirecrestError


class TransferFailed(FirecrestError):
    """The transfer itself went wrong (not the request): the task ends with this reason."""


class Stalled(Exception):
    """The client stopped sending an upload's segments: stop pulling, and wait for the whole upload."""
