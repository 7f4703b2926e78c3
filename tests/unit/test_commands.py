"""Command lines are built in one place, with every word quoted; failures map to the contract's errors."""

from __future__ import annotations

import shlex

import pytest

from common import errors
from common.commands import Command, Groups, Output, PathExists, classify


@pytest.mark.parametrize("path", ["/home/alice/a b", "it's", "$(id)", "`id`", "a;b|c&d", "-rf", "..", "ü", "x" * 4096])
def test_user_values_are_single_words(path):
    line = PathExists(path).line(5, "req-1")
    words = shlex.split(line)
    assert words == ["ID=req-1", "timeout", "-k", "2", "5", "stat", "-c", "%F", "--", path]


def test_a_hostile_request_id_is_dropped():
    assert not PathExists("/x").line(5, "a b; id").startswith("ID=")


def test_groups_parse():
    out = Output(0, b"uid=1001(alice) gid=1001(alice) groups=1001(alice),27(sudo)\n", b"")
    assert Groups().parse(out) == {
        "user": {"name": "alice", "id": "1001"},
        "group": {"name": "alice", "id": "1001"},
        "groups": [{"name": "alice", "id": "1001"}, {"name": "sudo", "id": "27"}],
    }


@pytest.mark.parametrize(
    ("status", "stderr", "kind"),
    [
        (124, "", errors.Timeout),
        (126, "firecrest-shell: refused: 'x' is not an allowed command", errors.CommandNotAllowed),
        # The login node's audit collector is down: nothing ran, and it is the site's condition (503).
        (126, "firecrest-shell: refused: the audit log is unavailable", errors.MachineNotAvailable),
        # A user's file named like the wrapper's message does not make it the wrapper's refusal.
        (1, "ls: cannot access 'firecrest-shell: refused: the audit log is unavailable': No such file",
         errors.InvalidPath),
        (2, "ls: cannot access '/x': No such file or directory", errors.InvalidPath),
        (1, "cp: cannot stat '/x': No such file or directory", errors.NotFound),
        (1, "head: cannot open '/x' for reading: Permission denied", errors.PermissionDenied),
        (1, "mkdir: cannot create directory '/x': File exists", errors.Exists),
        (1, "ls: /x/y: Not a directory", errors.NotADirectory),
        (1, "sha256sum: /x: Is a directory", errors.ADirectory),
        (1, "chown: changing ownership of '/x': Operation not permitted", errors.PermissionDenied),
        (3, "something else", errors.RemoteError),
    ],
)
def test_classify(status, stderr, kind):
    err = classify(Output(status, b"", stderr.encode()))
    assert type(err) is kind


def test_timeout_has_the_text_pyfirecrest_expects():
    body, status, headers = errors.to_response(errors.Timeout().with_description("Error on ls operation"))
    assert (status, body["error"], "X-Timeout" in headers) == (400, "Command has finished with timeout signal", True)


def test_header_values_are_one_latin1_line():
    err = errors.RemoteError("line one\nline two ünï ✓")
    assert err.headers()["X-Error"] == "line one line two ünï ?"


class Fails(Command[str]):
    name = "thing"

    def argv(self) -> list[str]:
        return ["thing"]


def test_failed_command_gets_the_operation_description():
    with pytest.raises(errors.InvalidPath) as err:
        Fails().result(Output(2, b"", b"ls: cannot access 'x': No such file or directory"))
    assert err.value.body() == {"description": "Error on thing operation",
                                "error": "ls: cannot access 'x': No such file or directory"}


def test_the_one_stat_probe_keeps_each_argv():
    from common.commands import FileKind
    from storage.external_jobs import FileSize

    def after_timeout(command: Command) -> list[str]:
        return shlex.split(command.line(5, None))[4:]

    assert after_timeout(PathExists("-x")) == ["stat", "-c", "%F", "--", "-x"]
    assert after_timeout(FileKind("-x")) == ["stat", "--dereference", "-c", "%F", "--", "-x"]
    assert after_timeout(FileSize("-x")) == ["stat", "--dereference", "-c", "%s %F", "--", "-x"]
    assert FileKind("/d").result(Output(0, b"directory\n", b"")) == "directory"
    assert PathExists("/d").result(Output(0, b"symbolic link\n", b"")) is True
    assert FileSize("/f").result(Output(0, b"12 regular file\n", b"")) == 12
    with pytest.raises(errors.ADirectory):
        FileSize("/d").result(Output(0, b"4096 directory\n", b""))
    with pytest.raises(errors.InvalidPath):
        FileSize("/p").result(Output(0, b"0 fifo\n", b""))
