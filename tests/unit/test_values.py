"""Checks of user values (common/values.py): ASCII digits only, bounded JSON, Slurm job ids."""

from __future__ import annotations

import json

import pytest

from common import errors, values


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("007", 7), ("9" * 18, 10**18 - 1), ("²", None),
                                                 ("٣", None), ("１", None), ("-1", None), ("+1", None), (" 1", None),
                                                 ("1\n", None), ("", None), ("9" * 19, None), ("1e3", None)])
def test_integer_takes_ascii_digits_only(value, expected):
    assert values.integer(value) == expected


@pytest.mark.parametrize(("raw", "words"), [
    ("[" * 5000, "nested deeper"), ('{"a": ' + "9" * 5000 + "}", "number longer"), ("{" * 33, "nested deeper"),
    ('{"a": 1e' + "9" * 80 + "}", "number longer"), ('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "Infinity"),
    ("x" * (values.JSON_MAX_BYTES + 1), "longer than"), ("{", "Expecting"), ('{"a": "\\ud800"', "Expecting"),
])
def test_json_value_is_bounded(raw, words):
    with pytest.raises(errors.BadRequest) as caught:
        values.json_value(raw, "env", "Failed to submit job")
    assert words in caught.value.error and caught.value.description == "Failed to submit job"


def test_json_value_counts_brackets_outside_strings_only():
    value = {"a": '[[[ " {{{ \\' * 40}
    assert values.json_value(json.dumps(value), "env", "x") == value
    assert values.json_value("[" * 32 + "]" * 32, "env", "x")  # at the bound


@pytest.mark.parametrize("jobid", ["12", "12+1", "12_3", "12_[1-3]"])
def test_valid_job_ids(jobid):
    assert values.valid_job_id(jobid)


@pytest.mark.parametrize("jobid", ["", "-1", "12,13", "12_", "12_[1-]", "1 2", "١٢", "12\n", "--help", "12_[1-3]x"])
def test_invalid_job_ids(jobid):
    assert not values.valid_job_id(jobid)
