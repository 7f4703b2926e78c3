"""Internal transfers (`/xfer-internal/...`): batch jobs on the system's xfer partition (being written)."""

from __future__ import annotations

from flask import Blueprint

internal = Blueprint("internal", __name__)
