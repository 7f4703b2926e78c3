"""Request values (common/params.py): ASCII integers only, bounded JSON."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from common import errors, params

APP = Flask(__name__)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("007", 7), ("9" * 18, 10**18 - 1), ("²", None),
                                                 ("٣", None), ("１", None), ("-1", None), ("+1", None), (" 1", None),
                                                 ("1\n", None), ("", None), ("9" * 19, None), ("1e3", None)])
def test_integer_takes_ascii_digits_only(value, expected):
    assert params.integer(value) == expected


@pytest.mark.parametrize("value", ["²", "٣", "-1", "1" * 19, "9" * 5000, "x"])
def test_count_refuses_what_is_not_an_integer(value):
    with APP.test_request_context(f"/?lines={value}"), pytest.raises(errors.BadRequest) as caught:
        params.count("lines", "head")
    assert "'lines'" in caught.value.error and caught.value.description == "Error on head operation"


def test_count_and_number():
    with APP.test_request_context("/?lines=12&pageSize=²&pageNumber=3"):
        assert params.count("lines", "head") == 12 and params.count("bytes", "head") is None
        assert params.number("pageSize") is None and params.number("pageNumber") == 3
    with APP.test_request_context("/?pageSize=5"), pytest.raises(errors.BadRequest):
        params.count("pageSize", "ls", maximum=4)


@pytest.mark.parametrize(("raw", "words"), [
    ("[" * 5000, "nested deeper"), ('{"a": ' + "9" * 5000 + "}", "number longer"), ("{" * 33, "nested deeper"),
    ('{"a": 1e' + "9" * 80 + "}", "number longer"), ('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "Infinity"),
    ("x" * (params.JSON_MAX_BYTES + 1), "longer than"), ("{", "Expecting"), ('{"a": "\\ud800"', "Expecting"),
])
def test_json_value_is_bounded(raw, words):
    with pytest.raises(errors.BadRequest) as caught:
        params.json_value(raw, "env", "Failed to submit job")
    assert words in caught.value.error and caught.value.description == "Failed to submit job"


def test_json_value_counts_brackets_outside_strings_only():
    value = {"a": '[[[ " {{{ \\' * 40}
    assert params.json_value(json.dumps(value), "env", "x") == value
    assert params.json_value("[" * 32 + "]" * 32, "env", "x")  # at the bound
