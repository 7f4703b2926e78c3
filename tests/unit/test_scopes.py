"""common/scopes.py: registered applications and scopes, as the services check them (pure logic)."""

from __future__ import annotations

import pytest

from common.config import AuthConfig
from common.errors import Forbidden
from common.scopes import check_application, check_scope

CONFIG = AuthConfig("http://idp/realms/r", "firecrest", "unix_username", ("RS256",),
                    applications=frozenset({"portal", "alice-cli"}),
                    scopes={"utilities": {"read": "firecrest-read", "change": "firecrest-files"},
                            "tasks": {"read": "firecrest-read"}})


@pytest.mark.parametrize("azp", ["portal", "alice-cli"])
def test_registered_applications_pass(azp):
    check_application(CONFIG, {"azp": azp})


@pytest.mark.parametrize("azp", [None, "", "portal ", "PORTAL", ["portal"], "other", "portal\nalice-cli"])
def test_anything_else_is_refused(azp):
    with pytest.raises(Forbidden, match="not registered"):
        check_application(CONFIG, {"azp": azp} if azp is not None else {})


def test_a_site_without_the_list_takes_every_application():
    check_application(AuthConfig("i", "a", "u", ("RS256",)), {"azp": "anything"})


@pytest.mark.parametrize(("method", "scope"), [("GET", "firecrest-read"), ("HEAD", "firecrest-read"),
                                               ("POST", "firecrest-files"), ("PUT", "firecrest-files"),
                                               ("DELETE", "firecrest-files"), ("PATCH", "firecrest-files")])
def test_each_kind_needs_its_scope(method, scope):
    check_scope(CONFIG, "utilities", method, {"scope": f"profile {scope} email"})
    with pytest.raises(Forbidden, match=f"needs the scope {scope},"):
        check_scope(CONFIG, "utilities", method, {"scope": "profile email"})


@pytest.mark.parametrize("granted", ["firecrest-filesX", "xfirecrest-files", "firecrest-files-all", "firecrest",
                                     "FIRECREST-FILES", ["firecrest-files"], 1, None, "firecrest-read"])
def test_only_the_whole_scope_name_counts(granted):
    with pytest.raises(Forbidden):
        check_scope(CONFIG, "utilities", "POST", {"scope": granted})


def test_services_and_kinds_without_a_scope_need_none():
    check_scope(CONFIG, "tasks", "PUT", {})  # the tasks service's changes are internal
    check_scope(CONFIG, "certificator", "POST", {})
    with pytest.raises(Forbidden):
        check_scope(CONFIG, "tasks", "GET", {})
