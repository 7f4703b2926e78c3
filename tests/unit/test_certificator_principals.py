"""The certificator's rule of who may get a certificate: accounts of the cluster in the uid range, in the list
and group where given; root, service accounts, nobody and unknown names never."""

from __future__ import annotations

import grp
import pwd

import pytest
import yaml

from certificator import principals
from certificator.principals import NotAClusterUser, Principals, parse
from common.stack_env import REPO

ACCOUNTS = {"root": 0, "swift": 108, "alice": 1001, "bob": 1002, "carol": 1003, "nobody": 65534}


@pytest.fixture(autouse=True)
def accounts(monkeypatch):
    def getpwnam(name: str) -> pwd.struct_passwd:
        if name not in ACCOUNTS:
            raise KeyError(name)
        uid = ACCOUNTS[name]
        return pwd.struct_passwd((name, "*", uid, uid, "", f"/home/{name}", "/bin/bash"))

    def getgrnam(name: str) -> grp.struct_group:
        if name != "hpc":
            raise KeyError(name)
        return grp.struct_group(("hpc", "x", 5000, ["alice"]))

    monkeypatch.setattr(principals.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(principals.grp, "getgrnam", getgrnam)


@pytest.mark.parametrize("name", ["root", "swift", "nobody", "ghost", "alice,root", ""])
def test_defaults_refuse_system_accounts_and_unknown_names(name):
    with pytest.raises(NotAClusterUser, match="not a user of this cluster"):
        parse(None).check(name)


def test_defaults_admit_accounts_in_the_uid_range():
    for name in ("alice", "bob", "carol"):
        parse(None).check(name)


def test_the_list_and_the_group_narrow_it():
    listed = parse({"users": ["alice", "bob", "root"]})
    listed.check("bob")
    for name in ("carol", "root"):  # root: listed, but never in range
        with pytest.raises(NotAClusterUser):
            listed.check(name)
    grouped = parse({"group": "hpc"})
    grouped.check("alice")
    with pytest.raises(NotAClusterUser, match="not in the group hpc"):
        grouped.check("bob")
    with pytest.raises(NotAClusterUser):
        parse({"group": "missing"}).check("alice")


@pytest.mark.parametrize("raw", [{"min_uid": 0}, {"min_uid": 2000, "max_uid": 1000}, {"users": "alice"},
                                 {"users": [1, 2]}])
def test_a_rule_that_would_admit_root_or_is_malformed_is_refused(raw):
    with pytest.raises(ValueError):
        parse(raw)


def test_the_site_file_rule():
    raw = yaml.safe_load((REPO / "deploy" / "local" / "site.yaml").read_text())["certificates"]
    assert parse(raw) == Principals(min_uid=1000, max_uid=60000, users=frozenset({"alice", "bob"}))


SITE = """
systems:
  - name: cluster
    login: {host: 127.0.0.1, port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"}
auth: {issuer: "http://issuer.test/realms/x", audience: firecrest}
certificates: {ca_key: /ca/user_ca, validity_minutes: 5, resume_window_s: 60, group: hpc%s}
"""


def test_the_certificator_is_built_with_its_sites_rule_and_key():
    from certificator.app import create
    from certificator.routes import CA_KEY, PRINCIPALS
    from common.config import parse as parse_site

    app = create(site=parse_site(SITE % "", {}))
    assert app.extensions[PRINCIPALS] == Principals(group="hpc")  # ca_key, validity and window are not the rule's
    assert {name: str(key) for name, key in app.extensions[CA_KEY].items()} == {"cluster": "/ca/user_ca"}


def test_a_bad_rule_stops_the_certificator_when_it_is_built():
    from certificator.app import create
    from common.config import parse as parse_site

    with pytest.raises(ValueError, match="min_uid"):
        create(site=parse_site(SITE % ", min_uid: 0", {}))
