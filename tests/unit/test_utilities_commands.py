"""The utilities' command lines and the ls parser (pure logic; the real runs are in tests/integration)."""

from __future__ import annotations

import shlex

import pytest

from common import errors, files
from common.commands import Output
from utilities import commands as c
from utilities import listing


def words(command) -> list[str]:
    return shlex.split(command.line(5, None))[4:]  # after `timeout -k 2 5`


@pytest.mark.parametrize("hostile", ["-rf", "--help", "a b", "$(id)", "it's", "`id`", "x;y"])
def test_user_values_stay_operands(hostile):
    assert words(files.Mkdir(hostile, parents=True)) == ["mkdir", "-p", "--", hostile]
    assert words(files.Rename(hostile, "/t")) == ["mv", "--force", "--", hostile, "/t"]
    assert words(c.Chmod("/p", hostile)) == ["chmod", "-v", "--", hostile, "/p"]
    assert words(files.Upload("/home/alice", hostile)) == ["dd", f"of=/home/alice/{hostile}", "bs=1M", "status=none"]
    tar = words(files.Compress(f"/home/alice/{hostile}", hostile, False))
    assert tar[:4] == ["tar", "--force-local", "--no-unquote", "-czf"] and tar[4] == files.operand(hostile)
    assert tar[-2:] == ["--", hostile]


def test_operand_protects_leading_dashes():
    assert files.operand("-x") == "./-x" and files.operand("/a/-x") == "/a/-x"


@pytest.mark.parametrize(
    ("tool", "unit", "count", "skip", "flag"),
    [("head", "lines", 3, False, "--lines=3"), ("head", "bytes", 3, True, "--bytes=-3"),
     ("tail", "lines", 3, True, "--lines=+3"), ("tail", "bytes", 7, False, "--bytes=7")],
)
def test_head_and_tail_flags(tool, unit, count, skip, flag):
    assert words(c.Slice(tool, "/f", unit, count, skip)) == [tool, flag, "--", "/f"]


def test_read_file_refuses_more_than_the_limit():
    command = c.ReadFile("view", "/f", 4, "Failed to view file content")
    assert command.parse(Output(0, b"1234", b"")) == b"1234"
    with pytest.raises(errors.SizeLimit):
        command.parse(Output(0, b"12345", b""))


@pytest.mark.parametrize(
    ("source", "requested", "kind"),
    [("a.tar.gz", "", "tar"), ("a.zip", "auto", "zip"), ("a.bin", ".zip", "zip"), ("a.bin", "tgz", "tar")],
)
def test_extractor(source, requested, kind):
    assert files.extractor(source, requested) == kind


@pytest.mark.parametrize(("source", "requested"), [("a.bin", ""), ("a.zip", ".rar")])
def test_extractor_refuses_unknown_formats(source, requested):
    with pytest.raises(errors.BadRequest):
        files.extractor(source, requested)


def test_stat_parse():
    out = Output(0, b"81a4 12 65024 1 1001 1001 12 1700000000 1700000001 1700000002\n", b"")
    assert c.Stat("/f", False).parse(out) == {"mode": 0o100644, "ino": 12, "dev": 65024, "nlink": 1, "uid": 1001,
                                              "gid": 1001, "size": 12, "atime": 1700000000, "mtime": 1700000001,
                                              "ctime": 1700000002}


LS = '''total 8
drwxr-xr-x 2 alice alice 4096 2026-11-25T04:30:08 "sub"
-rw-r--r-- 1 alice alice   12 2026-11-25T04:30:08 "it's \\"q\\" \\303\\274\\n"
lrwxrwxrwx 1 alice alice    6 2026-11-25T04:30:08 "link" -> "up.txt"
crw-rw-rw- 1 root root 1, 3 2026-11-25T04:30:08 "null"
'''


def test_ls_parse_decodes_c_quoting():
    entries = listing.parse(LS, "/home/alice/t", recursive=False)
    assert [e["name"] for e in entries] == ["sub", "it's \"q\" ü\n", "link", "null"]
    assert entries[2]["link_target"] == "up.txt" and entries[2]["type"] == "l"
    assert entries[0] == {"name": "sub", "type": "d", "link_target": "", "user": "alice", "group": "alice",
                          "permissions": "rwxr-xr-x", "last_modified": "2026-11-25T04:30:08", "size": "4096"}


def test_ls_parse_recursive_prefixes_sub_folders():
    text = ('"/home/alice/t":\ntotal 4\ndrwxr-xr-x 2 a a 4096 2026-11-25T04:30:08 "sub"\n\n'
            '"/home/alice/t/sub":\ntotal 0\n-rw-r--r-- 1 a a 0 2026-11-25T04:30:08 "f"\n')
    assert [e["name"] for e in listing.parse(text, "/home/alice/t/", recursive=True)] == ["sub", "sub/f"]


def test_ls_parse_names_only():
    assert listing.parse('"a"\n"b c"\n', "/x", recursive=False) == ["a", "b c"]


def test_the_compress_plan_writes_aside():
    """One definition for the utilities route and the internal transfer's job: tar into a partial file next to
    the target, then rename it onto the target; on failure remove the partial."""
    plan = files.compress_plan("/home/alice/d", "/home/alice/out/-x.tgz", True, "0123456789abcdef-more")
    assert plan.partial == "/home/alice/out/.firecrest-0123456789abcdef.partial"
    assert [words(step) for step in plan.steps] == [
        files.Compress("/home/alice/d", plan.partial, True).argv(),
        ["mv", "--force", "--", plan.partial, "/home/alice/out/-x.tgz"]]
    assert words(plan.cleanup) == ["rm", "-r", "--interactive=never", "--", plan.partial]
    assert plan.job_cleanup == ("rm", "-f", "--", plan.partial)


def test_write_stdin_and_probe():
    assert files.Upload("/home/alice/firecrest/t1", "s.sh").path == "/home/alice/firecrest/t1/s.sh"
    assert words(files.Writable("/d/-f")) == ["dd", "of=/d/-f", "count=0", "conv=notrunc", "status=none"]
    assert words(files.Mkdir("/d", parents=False)) == ["mkdir", "--", "/d"]
