"""Pure checks of request values: integers, bounded JSON, node lists, accounts, dependencies, extract's extensions,
and the per-user bound on synchronous commands."""

from __future__ import annotations

import json
import threading

import pytest
from flask import Flask

from common import errors, files, params
from common.auth import Identity
from common.ssh import UserSlots
from compute import dependency, environment, names

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


def test_env_from_json():
    assert environment.parse_env('{"A": 1, "B": "$(id)", "C": true}') == {"A": "1", "B": "$(id)", "C": "True"}
    with pytest.raises(errors.BadRequest):
        environment.parse_env('{"A": ' + "[" * 40 + "]" * 40 + "}")


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


@pytest.mark.parametrize(("script", "spec"), [
    ("#!/bin/bash\n#SBATCH --dependency=afterok:5\ntrue\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --dependency afterok:5 # why\n", "afterok:5"),
    ("#!/bin/bash\n\n# comment\n#SBATCH -d afterany:5:6\n", "afterany:5:6"),
    ("#!/bin/bash\n#SBATCH -dafterok:5\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --depend='afterok:5'\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH --dependency=afterok:5\n#SBATCH --dependency=afterok:6\n", "afterok:6"),
    ("#!/bin/bash\n#SBATCH --job-name=--dependency=afterok:5\n", ""),
    ("#!/bin/bash\necho hi\n#SBATCH --dependency=afterok:5\n", ""),  # after the first command: not a directive
    ("#!/bin/bash\n#SBATCH --dependency='unclosed\n", "'unclosed"),
    ("#!/bin/bash\n#SBATCH\t--dependency=afterok:5\n", "afterok:5"),
    ("#!/bin/bash\n#SBATCH--dependency=afterok:5\n", "afterok:5"),
])
def test_requested_dependency(script, spec):
    assert dependency.requested(script.encode()) == spec


@pytest.mark.parametrize("line", ["#PBS -W depend=afterok:5", "#BSUB -w done(5)"])
def test_other_dialects_are_refused(line):
    with pytest.raises(errors.BadRequest):
        dependency.requested(f"#!/bin/bash\n{line}\n".encode())


@pytest.mark.parametrize(("spec", "ids"), [("afterok:5", ["5"]), ("afterok:5:6_2,afterany:7", ["5", "6", "7"]),
                                           ("after:5+10?afternotok:6", ["5", "6"]), ("singleton", []), ("", [])])
def test_dependency_ids(spec, ids):
    assert dependency.check(spec) == ids


@pytest.mark.parametrize("spec", ["afterok:$(id)", "afterok:-1", "afterok:²", "a,b", "afterok:1,afterok:2?afterok:3",
                                  "before:1", "afterok:" + "9" * 30, "afterok:1 --wrap=id", "afterok:", "'unclosed"])
def test_malformed_dependencies(spec):
    with pytest.raises(errors.BadRequest):
        dependency.check(spec)


def test_allowed_dependencies_need_every_job_to_be_the_callers():
    seen = []

    def run(command):
        seen.append(type(command).__name__)
        return {"6"} if isinstance(command, dependency.AccountedJobs) else {"5"}  # 6 finished long ago

    assert dependency.allowed(run, "alice", "afterok:5:6") == "afterok:5:6"
    assert seen == ["QueuedJobs", "AccountedJobs"]
    with pytest.raises(errors.BadRequest) as caught:
        dependency.allowed(lambda command: set(), "alice", "afterok:7")
    assert caught.value.error == "Invalid dependency: job 7 is not one of your jobs"


@pytest.mark.parametrize(("requested", "kind"), [("tar.gz", "tar"), (".tar.gz", "tar"), ("TAR.BZ2", "tar"),
                                                 ("tar.xz", "tar"), (" .zip ", "zip"), ("tgz", "tar")])
def test_extract_extensions(requested, kind):
    assert files.extractor("archive.bin", requested) == kind


@pytest.mark.parametrize("requested", ["rar", "$(id)", "--tar.gz", "tar.gz.exe", "²"])
def test_extract_refuses_unknown_extensions(requested):
    with pytest.raises(errors.BadRequest):
        files.extractor("archive.bin", requested)


def test_user_slots_bound_each_user_and_release_them():
    slots = UserSlots(2)
    alice, bob = Identity("alice", "t", {}), Identity("bob", "t", {})
    with slots.hold(alice, "cluster"), slots.hold(alice, "cluster"):
        with pytest.raises(errors.TooManyRequests) as caught, slots.hold(alice, "cluster"):
            pass
        assert caught.value.status == 429 and caught.value.headers() == {"Retry-After": "1"}
        with slots.hold(bob, "cluster"):  # another user is not affected
            pass
        with slots.hold(Identity("alice", "t", {}, background=True), "cluster"):  # background work is not counted
            pass
    with slots.hold(alice, "cluster"), slots.hold(alice, "cluster"):  # released, also after an error
        pass
    assert not slots._held


def test_user_slots_under_threads():
    slots, barrier, refused = UserSlots(3), threading.Barrier(8), []

    def one() -> None:
        try:
            with slots.hold(Identity("alice", "t", {}), "cluster"):
                barrier.wait(timeout=10)
        except errors.TooManyRequests:
            refused.append(1)
            barrier.wait(timeout=10)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 5 and not slots._held
