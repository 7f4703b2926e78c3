"""Request parameters (common/params.py): integers in ASCII digits, or a 400 that says so."""

from __future__ import annotations

import pytest
from flask import Flask

from common import errors, params

APP = Flask(__name__)


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
