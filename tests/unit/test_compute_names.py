"""Node lists and accounts (compute/names.py): hostlist syntax and account names only."""

from __future__ import annotations

import pytest

from common import errors
from compute import names


@pytest.mark.parametrize(("raw", "hosts"), [("localhost", ["localhost"]), ("a,b,a", ["a", "b"]),
                                            ("nid[001-004,7]-gpu,x.y", ["nid[001-004,7]-gpu", "x.y"]),
                                            (["n1", "n[1-2]"], ["n1", "n[1-2]"]), ("", [])])
def test_node_lists(raw, hosts):
    assert names.node_list(raw) == hosts


@pytest.mark.parametrize("raw", ["--version", "-a", "a b", "$(id)", "n[1-", "n[]", "n[a]", "a,,b", "²", "x=y",
                                 "a]b", "é", "n" * 300])
def test_node_lists_refuse_what_is_not_hostlist_syntax(raw):
    with pytest.raises(errors.BadRequest):
        names.node_list(raw)


@pytest.mark.parametrize("value", ["--help", "-x", "a b", "$(id)", "a,b", "²", ".x", "a=b"])
def test_accounts(value):
    assert names.account("project-a") == "project-a"
    with pytest.raises(errors.BadRequest):
        names.account(value)
