"""A job's `env` (compute/environment.py): JSON to sbatch's --export values."""

from __future__ import annotations

import pytest

from common import errors
from compute import environment


def test_env_from_json():
    assert environment.parse_env('{"A": 1, "B": "$(id)", "C": true}') == {"A": "1", "B": "$(id)", "C": "True"}
    with pytest.raises(errors.BadRequest):
        environment.parse_env('{"A": ' + "[" * 40 + "]" * 40 + "}")
