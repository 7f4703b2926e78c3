"""Bad input to utilities is a clear error, never a 5xx, never altered content, never a dropped connection.

Integers are ASCII digits only (`str.isdigit` takes "²" and "٣", which `int` refuses); `view` refuses bytes that are
not UTF-8 instead of replacing them; `extract` takes compound extensions (tar.gz) as pyfirecrest sends them; an
upload to a bad target is the same 400 whatever its size, and a command that stops reading its input leaves the
pooled connection in place (the per-user bound on synchronous commands: tests/integration/test_utilities_bound.py).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator

import pytest
import requests
import test_utilities
from cluster_paths import cluster_path
from test_utilities import ALICE, Api, failed, ok, write_as

UTILITIES_WORKERS = 2  # deploy/local/stack/components/services.py
BIG = 4 * 1024 * 1024  # over common/files.py PROBE_ABOVE, under the 5 MB limit
HOSTILE_INTEGERS = ["²", "٣", "١٢", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1.0", "$(id)", "'1'", "--lines=5",
                    "1" * 19, "9" * 4000, "½", "Ⅻ", "𝟙"]
ERROR_HEADERS = {"X-Invalid-Path", "X-Permission-Denied", "X-Error", "X-Timeout", "X-A-Directory", "X-Not-Found"}


@pytest.fixture
def api(site) -> Api:
    return Api(site, "alice")


@pytest.fixture
def home(api) -> Iterator[str]:
    yield from test_utilities.home.__wrapped__(api)


def refused_before_the_cluster(response: requests.Response, parameter: str) -> None:
    """A request mistake: 400, JSON naming the parameter, and none of the remote-failure headers (nothing ran)."""
    body = failed(response, 400)
    assert f"'{parameter}'" in body["error"], body
    assert not ERROR_HEADERS & set(response.headers), dict(response.headers)


@pytest.mark.parametrize("value", HOSTILE_INTEGERS)
@pytest.mark.parametrize(("route", "parameter"), [("/head", "lines"), ("/head", "bytes"), ("/tail", "lines"),
                                                  ("/tail", "bytes")])
def test_integers_are_ascii_digits_or_a_400(api, home, route, parameter, value):
    write_as(ALICE, f"{home}/f", b"one\ntwo\n")
    refused_before_the_cluster(api.get(route, targetPath=f"{home}/f", **{parameter: value}), parameter)


def test_large_ascii_integers_still_work(api, home):
    write_as(ALICE, f"{home}/f", b"one\ntwo\n")
    ok(api.get("/head", targetPath=f"{home}/f", lines="9" * 18), 200, "Success to head file.", "one\ntwo\n")
    ok(api.get("/tail", targetPath=f"{home}/f", bytes="0004"), 200, "Success to tail file.", "two\n")


@pytest.mark.parametrize("value", HOSTILE_INTEGERS)
def test_ls_paging_that_is_not_a_number_gives_the_whole_list(api, home, value):
    """The contract: paging that is not a (positive) number is ignored, never an error and never a 5xx."""
    for name in ("a", "b", "c"):
        write_as(ALICE, f"{home}/{name}", b"")
    output = ok(api.get("/ls", targetPath=home, pageSize=value, pageNumber=value), 200, "List of contents")
    assert sorted(e["name"] for e in output) == ["a", "b", "c"]


# --- view: text only, never altered --------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"\xff\xfe", b"caf\xe9\n", b"ok\n\x80", "é".encode()[:1], b"\xed\xa0\x80"])
def test_view_of_bytes_that_are_not_utf8_is_a_400(api, home, data):
    write_as(ALICE, f"{home}/bin", data)
    body = failed(api.get("/view", targetPath=f"{home}/bin"), 400, "X-Error")
    assert body["description"] == "Failed to view file content"
    assert "not UTF-8" in body["error"] and "\ufffd" not in body["error"]


def test_view_of_utf8_text_is_exact(api, home):
    text = "ünïcødé ☃ 漢字 \U0001f600\n$(id) '\"\n"
    write_as(ALICE, f"{home}/t", text.encode())
    assert ok(api.get("/view", targetPath=f"{home}/t"), 200, "Success to view file.") == text


# --- extract: compound extensions -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("extension", "mode"), [("tar.gz", "w:gz"), (".tar.gz", "w:gz"), ("tar.bz2", "w:bz2"),
                                                 (".tar.xz", "w:xz"), ("TAR.GZ", "w:gz"), ("tgz", "w:gz")])
@pytest.mark.parametrize("field", ["extension", "type"])
def test_extract_takes_compound_extensions(api, home, extension, mode, field):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        info = tarfile.TarInfo("inside.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"inside"))
    write_as(ALICE, f"{home}/archive.bin", buffer.getvalue())  # the name says nothing: the extension decides
    os.mkdir(cluster_path(f"{home}/out"))
    os.chown(cluster_path(f"{home}/out"), ALICE.pw_uid, ALICE.pw_gid)
    ok(api.post("/extract", sourcePath=f"{home}/archive.bin", targetPath=f"{home}/out", **{field: extension}),
       201, "Success to extract file.", "")
    assert cluster_path(f"{home}/out/inside.txt").read_bytes() == b"inside"


@pytest.mark.parametrize("extension", ["$(id)", "--tar.gz", "tar.gz; id", ".rar", "tar.gz.exe", "²"])
def test_extract_refuses_unknown_extensions(api, home, extension):
    write_as(ALICE, f"{home}/a.tar.gz", b"")
    body = failed(api.post("/extract", sourcePath=f"{home}/a.tar.gz", targetPath=home, extension=extension), 400)
    assert "Unsupported file format" in body["error"]


# --- upload to a bad target ---------------------------------------------------------------------------------------

def commands_of(site, request_id: str) -> list[dict]:
    return site.audit_records({request_id})


@pytest.mark.parametrize("size", [10, BIG])
def test_upload_to_a_missing_directory_is_the_same_400_whatever_its_size(site, api, home, size):
    response = api.post("/upload", files={"file": ("f.bin", os.urandom(size))}, targetPath=f"{home}/no/such")
    body = failed(response, 400, "X-Invalid-Path")
    assert body["error"] == f"dd: failed to open '{home}/no/such/f.bin': No such file or directory"
    rid = api.calls[-1][0]
    records = commands_of(site, rid)
    assert len(records) == 1, records  # one command, on one connection: no retry with a second certificate
    assert ("count=0" in records[0]["command"]) == (size == BIG)  # the large one opened its target first


def test_a_command_that_stops_reading_its_input_keeps_the_pooled_connection(site, api):
    """dd to /dev/full opens it (the probe passes), then fails while megabytes are still being sent: a command
    result (400), and the next requests still use the same connections (one certificate per worker)."""
    rids = []
    for _ in range(6):
        response = api.post("/upload", files={"file": ("full", os.urandom(BIG))}, targetPath="/dev")
        body = failed(response, 400, "X-Error")
        assert "No space left on device" in body["error"]
        rids.append(api.calls[-1][0])
        ok(api.get("/whoami"), 200, "User information", "alice")
        rids.append(api.calls[-1][0])
    records = site.audit_records(set(rids))
    for rid in rids[::2]:
        assert len([r for r in records if r["request_id"] == rid]) == 2  # probe and upload, no retry
    # A dropped connection would make the next request open a new one (a new certificate): at most one per
    # worker (of every replica), and one more if a connection reached its maximum age meanwhile.
    assert len({r["key_id"] for r in records}) <= UTILITIES_WORKERS * site.replicas("utilities") + 1
