"""The utilities service through the gateway, endpoint by endpoint, as a FirecREST v1 client sees it.

For every endpoint: success as alice with the contract's status code and body (FirecREST v1 §6), then each
contract error (§1.2 machine, §1.3 parameters, §3.6 X-* headers, size limits, timeouts). Every test works in
its own directory /home/alice/t-<hex>, made and removed through the API. Setup the API cannot do (a FIFO, a file
owned by bob, a file over the size limit) is done as root in this process and chowned to the user.
"""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import re
import shlex
import shutil
import stat as st
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import gateway_client
import pytest
import requests
from cluster_paths import cluster_path
from werkzeug.http import parse_options_header

MACHINE = "cluster"
LIMIT = 5 * 1024 * 1024  # UTILITIES_MAX_FILE_SIZE (5 MB) in bytes
ALICE = pwd.getpwnam("alice")
BOB = pwd.getpwnam("bob")
ENTRY_KEYS = {"name", "type", "link_target", "user", "group", "permissions", "last_modified", "size"}
STAT_KEYS = ["mode", "ino", "dev", "nlink", "uid", "gid", "size", "atime", "mtime", "ctime"]
TIMEOUT_TEXT = "Command has finished with timeout signal"
LINES = "".join(f"line {i:02d}\n" for i in range(1, 31))  # 30 lines: more than head's default 10



class Api(gateway_client.Api):
    """Calls `<gateway>/utilities/...` as one user, with a fresh X-Request-ID on every call."""

    def __init__(self, site, user: str = "alice") -> None:
        super().__init__(site, user, "utilities")

    def upload(self, directory: str, name: str, data: bytes) -> None:
        response = self.post("/upload", files={"file": (name, data)}, targetPath=directory)
        assert response.status_code == 201, response.text

    def mkdir(self, path: str) -> None:
        response = self.post("/mkdir", targetPath=path, p="")
        assert response.status_code == 201, response.text


@pytest.fixture
def api(site) -> Api:
    return Api(site, "alice")


@pytest.fixture
def bob_api(site) -> Api:
    return Api(site, "bob")


@pytest.fixture
def home(api) -> Iterator[str]:
    """A fresh directory of alice's, made through the API and removed through the API."""
    path = f"/home/alice/t-{uuid.uuid4().hex[:12]}"
    response = api.post("/mkdir", targetPath=path)
    assert response.status_code == 201, response.text
    yield path
    removed = api.delete("/rm", targetPath=path)
    if os.path.lexists(local := cluster_path(path)):
        shutil.rmtree(local)
    assert removed.status_code == 204, removed.text


# --- root-side helpers (the test process runs as root; cluster paths through cluster_path) -----------------------

def write_as(user: pwd.struct_passwd, path: str, data: bytes, mode: int = 0o644) -> None:
    local = cluster_path(path)
    local.write_bytes(data)
    os.chown(local, user.pw_uid, user.pw_gid)
    os.chmod(local, mode)


def fifo_as(user: pwd.struct_passwd, path: str) -> None:
    local = cluster_path(path)
    os.mkfifo(local)
    os.chown(local, user.pw_uid, user.pw_gid)


def processes(uid: int, needle: str) -> list[str]:
    """`comm: argv` of `uid`'s live processes that have `needle` in one of their arguments."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(needle in arg for arg in argv):
            found.append(f"{comm}: {' '.join(argv)}")
    return found


def ok(response: requests.Response, status: int, description: str | tuple[str, ...], output: object = None) -> object:
    """The contract's success body: exactly {"description", "output"}; returns the output."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"description", "output"}
    expected = description if isinstance(description, tuple) else (description,)
    assert body["description"] in expected
    if output is not None:
        assert body["output"] == output
    return body["output"]


def failed(response: requests.Response, status: int = 400, header: str | None = None,
           error: str | None = None) -> dict:
    """A contract error: JSON body with a description, the given X-* header if any; returns the body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("description"), str) and body["description"]
    if header:
        assert header in response.headers, (dict(response.headers), body)
        assert response.headers[header]
    if error is not None:
        assert body.get("error") == error, body
    return body


def names(entries: list[dict]) -> list[str]:
    return sorted(e["name"] for e in entries)


# --- ls ------------------------------------------------------------------------------------------------------------

def test_ls_entries_have_the_contract_fields(api, home):
    api.upload(home, "a.txt", b"abc")
    api.mkdir(f"{home}/sub")
    os.symlink("a.txt", cluster_path(f"{home}/link"))
    os.lchown(cluster_path(f"{home}/link"), ALICE.pw_uid, ALICE.pw_gid)
    entries = ok(api.get("/ls", targetPath=home), 200, "List of contents")
    assert names(entries) == ["a.txt", "link", "sub"]
    for entry in entries:
        assert set(entry) == ENTRY_KEYS and all(isinstance(v, str) for v in entry.values())
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["last_modified"])
        assert (entry["user"], entry["group"]) == ("alice", "alice")
    by_name = {e["name"]: e for e in entries}
    assert by_name["a.txt"] | {"last_modified": ""} == {
        "name": "a.txt", "type": "-", "link_target": "", "user": "alice", "group": "alice",
        "permissions": "rw-r--r--", "last_modified": "", "size": "3"}
    assert by_name["sub"]["type"] == "d" and by_name["sub"]["permissions"] == "rwxr-xr-x"
    assert by_name["link"]["type"] == "l" and by_name["link"]["link_target"] == "a.txt"


def test_ls_showhidden(api, home):
    api.upload(home, ".hidden", b"h")
    api.upload(home, "shown", b"s")
    assert names(ok(api.get("/ls", targetPath=home), 200, "List of contents")) == ["shown"]
    hidden = ok(api.get("/ls", targetPath=home, showhidden="true"), 200, "List of contents")
    assert names(hidden) == [".hidden", "shown"]  # -A: never . or ..


def test_ls_recursive(api, home):
    api.mkdir(f"{home}/sub/deeper")
    api.upload(f"{home}/sub/deeper", "x.txt", b"x")
    api.upload(home, "top.txt", b"t")
    entries = ok(api.get("/ls", targetPath=home, recursive="true"), 200, "List of contents")
    assert names(entries) == ["sub", "sub/deeper", "sub/deeper/x.txt", "top.txt"]
    assert {e["name"]: e["type"] for e in entries}["sub/deeper/x.txt"] == "-"
    flat = ok(api.get("/ls", targetPath=home), 200, "List of contents")
    assert names(flat) == ["sub", "top.txt"]


def test_ls_numeric_uid(api, home):
    api.upload(home, "f", b"")
    [entry] = ok(api.get("/ls", targetPath=home, numericUid="true"), 200, "List of contents")
    assert (entry["user"], entry["group"]) == (str(ALICE.pw_uid), str(ALICE.pw_gid))


def test_ls_not_listing_gives_plain_names(api, home):
    for name in ("b", "a", "c"):
        api.upload(home, name, b"")
    output = ok(api.get("/ls", targetPath=home, notListing="true"), 200, "List of contents")
    assert sorted(output) == ["a", "b", "c"] and all(isinstance(n, str) for n in output)


def test_ls_pages_are_one_based(api, home):
    for i in range(5):
        api.upload(home, f"f{i}", b"")
    everything = names(ok(api.get("/ls", targetPath=home), 200, "List of contents"))
    assert everything == [f"f{i}" for i in range(5)]

    def listed(**paging: object) -> list[str]:
        return [e["name"] for e in ok(api.get("/ls", targetPath=home, **paging), 200, "List of contents")]

    assert listed(pageSize=2, pageNumber=1) == ["f0", "f1"]
    assert listed(pageSize=2, pageNumber=2) == ["f2", "f3"]
    assert listed(pageSize=2, pageNumber=3) == ["f4"]
    assert listed(pageSize=2, pageNumber=4) == everything  # out of range: the whole list, no error
    assert listed(pageSize=2) == everything


def test_ls_non_numeric_paging_gives_the_whole_list(api, home):
    """FirecREST v1 §6: "An out-of-range page or non-numeric values return the full list without error"."""
    for i in range(3):
        api.upload(home, f"f{i}", b"")
    for paging in ({"pageSize": "x", "pageNumber": "1"}, {"pageSize": "2", "pageNumber": "two"}):
        assert names(ok(api.get("/ls", targetPath=home, **paging), 200, "List of contents")) == ["f0", "f1", "f2"]


def test_ls_of_a_file(api, home):
    api.upload(home, "f.txt", b"12345")
    [entry] = ok(api.get("/ls", targetPath=f"{home}/f.txt"), 200, "List of contents")
    assert entry["size"] == "5" and entry["name"].endswith("f.txt")


def test_ls_seed_alias(site, api, home):
    """The seed's GET /utilities/{machinename}/ls: the machine in the path, no header needed."""
    api.upload(home, "seed.txt", b"s")
    response = api.request("GET", f"/{MACHINE}/ls", params={"targetPath": home}, machine=None)
    assert names(ok(response, 200, "List of contents")) == ["seed.txt"]
    unknown = api.request("GET", "/nope/ls", params={"targetPath": home}, machine=None)
    failed(unknown, 400, "X-Machine-Does-Not-Exist", "Machine does not exist")


def test_ls_errors(api, home):
    api.upload(home, "f", b"")
    failed(api.get("/ls", targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.get("/ls", targetPath="/home/bob"), 400, "X-Permission-Denied")
    # "ls: cannot access '<file>/x': Not a directory": "cannot access" comes first in §3.6, so X-Invalid-Path
    failed(api.get("/ls", targetPath=f"{home}/f/x"), 400, "X-Invalid-Path")


# --- mkdir -----------------------------------------------------------------------------------------------------

def test_mkdir(api, home):
    ok(api.post("/mkdir", targetPath=f"{home}/new"), 201, "Success to mkdir file.", "")
    assert os.path.isdir(cluster_path(f"{home}/new"))
    assert os.stat(cluster_path(f"{home}/new")).st_uid == ALICE.pw_uid


@pytest.mark.parametrize("p", ["", "true", "false"])  # §6: the field present at all means -p
def test_mkdir_with_p_makes_parents_and_accepts_existing(api, home, p):
    ok(api.post("/mkdir", targetPath=f"{home}/a/b/c", p=p), 201, "Success to mkdir file.", "")
    assert os.path.isdir(cluster_path(f"{home}/a/b/c"))
    ok(api.post("/mkdir", targetPath=f"{home}/a/b", p=p), 201, "Success to mkdir file.", "")


def test_mkdir_errors(api, home):
    api.upload(home, "file", b"")
    body = failed(api.post("/mkdir", targetPath=home), 400, "X-Exists")
    assert body["description"] == "Error on mkdir operation" and "File exists" in body["error"]
    failed(api.post("/mkdir", targetPath=f"{home}/no/parent"), 400, "X-Invalid-Path")
    assert not os.path.exists(cluster_path(f"{home}/no"))
    failed(api.post("/mkdir", targetPath=f"{home}/file/x"), 400, "X-Not-A-Directory")
    failed(api.post("/mkdir", targetPath="/home/bob/intruder"), 400, "X-Permission-Denied")


# --- rename, copy ------------------------------------------------------------------------------------------------

def test_rename(api, home):
    api.upload(home, "old", b"content")
    ok(api.put("/rename", sourcePath=f"{home}/old", targetPath=f"{home}/new"), 200, "Success to rename file.", "")
    assert not os.path.exists(cluster_path(f"{home}/old"))
    assert cluster_path(f"{home}/new").read_bytes() == b"content"


def test_rename_replaces_an_existing_file(api, home):
    api.upload(home, "a", b"A")
    api.upload(home, "b", b"B")
    ok(api.put("/rename", sourcePath=f"{home}/a", targetPath=f"{home}/b"), 200, "Success to rename file.", "")
    assert os.listdir(cluster_path(home)) == ["b"] and cluster_path(f"{home}/b").read_bytes() == b"A"


def test_rename_errors(api, home):
    failed(api.put("/rename", sourcePath=f"{home}/missing", targetPath=f"{home}/x"), 400, "X-Not-Found")
    api.upload(home, "f", b"")
    failed(api.put("/rename", sourcePath=f"{home}/f", targetPath="/home/bob/f"), 400, "X-Permission-Denied")
    assert os.path.exists(cluster_path(f"{home}/f"))


def test_copy_file_and_directory(api, home):
    api.mkdir(f"{home}/src/sub")
    api.upload(f"{home}/src", "a", b"A")
    api.upload(f"{home}/src/sub", "b", b"B")
    ok(api.post("/copy", sourcePath=f"{home}/src/a", targetPath=f"{home}/a2"), 201, "Success to copy file.", "")
    assert cluster_path(f"{home}/a2").read_bytes() == b"A" and cluster_path(f"{home}/src/a").exists()
    ok(api.post("/copy", sourcePath=f"{home}/src", targetPath=f"{home}/dst"), 201, "Success to copy file.", "")
    assert cluster_path(f"{home}/dst/sub/b").read_bytes() == b"B"


def test_copy_errors(api, home):
    failed(api.post("/copy", sourcePath=f"{home}/missing", targetPath=f"{home}/x"), 400, "X-Not-Found")
    failed(api.post("/copy", sourcePath="/home/bob/.bashrc", targetPath=f"{home}/x"), 400, "X-Permission-Denied")
    assert os.listdir(cluster_path(home)) == []


# --- chmod, chown ------------------------------------------------------------------------------------------------

def test_chmod(api, home):
    api.upload(home, "f", b"")
    path = f"{home}/f"
    output = ok(api.put("/chmod", targetPath=path, mode="700"), 200, "Success to chmod file or directory.")
    assert output == f"mode of '{path}' changed from 0644 (rw-r--r--) to 0700 (rwx------)"
    assert st.S_IMODE(os.stat(cluster_path(path)).st_mode) == 0o700
    ok(api.put("/chmod", targetPath=path, mode="go+r"), 200, "Success to chmod file or directory.")
    assert st.S_IMODE(os.stat(cluster_path(path)).st_mode) == 0o744


def test_chmod_errors(api, home):
    api.upload(home, "f", b"")
    body = failed(api.put("/chmod", targetPath=f"{home}/f", mode="999"), 400, "X-Invalid-Mode")
    assert "invalid mode" in body["error"]
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/f")).st_mode) == 0o644
    failed(api.put("/chmod", targetPath=f"{home}/missing", mode="700"), 400, "X-Invalid-Path")
    write_as(BOB, f"{home}/bobs", b"bob", 0o600)
    failed(api.put("/chmod", targetPath=f"{home}/bobs", mode="777"), 400, "X-Permission-Denied")
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/bobs")).st_mode) == 0o600


@pytest.mark.parametrize("who", [{"owner": "alice", "group": "alice"}, {"group": "alice"}, {"owner": "alice"}])
def test_chown_to_herself_and_her_group(api, home, who):
    api.upload(home, "f", b"")
    output = ok(api.put("/chown", targetPath=f"{home}/f", **who), 200, "Success to chown file or directory.")
    assert f"{home}/f" in output
    owned = os.stat(cluster_path(f"{home}/f"))
    assert (owned.st_uid, owned.st_gid) == (ALICE.pw_uid, ALICE.pw_gid)


def test_chown_errors(api, home):
    api.upload(home, "f", b"")
    path = f"{home}/f"
    failed(api.put("/chown", targetPath=path, owner="bob"), 400, "X-Permission-Denied")
    failed(api.put("/chown", targetPath=path, group="bob"), 400, "X-Permission-Denied")
    failed(api.put("/chown", targetPath=path, owner="no-such-user"), 400, "X-Invalid-Owner")
    failed(api.put("/chown", targetPath=path, group="no-such-group"), 400, "X-Invalid-Group")
    failed(api.put("/chown", targetPath=f"{home}/missing", owner="alice"), 400, "X-Invalid-Path")
    failed(api.put("/chown", targetPath=path), 400, error="group or owner must be set")
    failed(api.put("/chown", targetPath=path, owner="", group=""), 400, error="group or owner must be set")
    assert (os.stat(cluster_path(path)).st_uid, os.stat(cluster_path(path)).st_gid) == (ALICE.pw_uid, ALICE.pw_gid)


# --- file, stat, symlink -----------------------------------------------------------------------------------------

def test_file(api, home):
    api.upload(home, "t.txt", b"plain text\n")
    assert ok(api.get("/file", targetPath=f"{home}/t.txt"), 200, "Success to file file.") == "ASCII text"
    assert ok(api.get("/file", targetPath=home), 200, "Success to file file.") == "directory"
    api.upload(home, "empty", b"")
    assert ok(api.get("/file", targetPath=f"{home}/empty"), 200, "Success to file file.") == "empty"


def test_file_of_a_missing_path_is_an_error(api, home):
    """`file -b` exits 0 and prints "cannot open ... (No such file or directory)"; FirecREST v1 §3.3 makes any
    output with "No such file" or "cannot open" an error (upstream: X-Invalid-Path), never a file type."""
    response = api.get("/file", targetPath=f"{home}/missing")
    failed(response, 400)
    assert "X-Invalid-Path" in response.headers or "X-Not-Found" in response.headers


def test_stat(api, home):
    api.upload(home, "f", b"12345")
    output = ok(api.get("/stat", targetPath=f"{home}/f"), 200, "Success to stat file.")
    assert list(output) == STAT_KEYS and all(type(v) is int for v in output.values())
    real = os.stat(cluster_path(f"{home}/f"))
    assert output["mode"] == real.st_mode and st.S_ISREG(output["mode"])
    assert (output["ino"], output["nlink"], output["size"]) == (real.st_ino, real.st_nlink, 5)
    assert (output["uid"], output["gid"]) == (ALICE.pw_uid, ALICE.pw_gid)
    assert output["mtime"] == int(real.st_mtime) and output["dev"] == real.st_dev
    # the contract also accepts the file as sourcePath
    assert ok(api.get("/stat", sourcePath=f"{home}/f"), 200, "Success to stat file.") == output


def test_stat_dereference_on_a_symlink(api, home):
    api.upload(home, "target", b"0123456789")
    ok(api.post("/symlink", targetPath=f"{home}/target", linkPath=f"{home}/link"), 201,
       ("Success to symlink file.", "Success to link file."), "")
    link = ok(api.get("/stat", targetPath=f"{home}/link"), 200, "Success to stat file.")
    assert st.S_ISLNK(link["mode"]) and link["ino"] == os.lstat(cluster_path(f"{home}/link")).st_ino
    followed = ok(api.get("/stat", targetPath=f"{home}/link", dereference="true"), 200, "Success to stat file.")
    assert st.S_ISREG(followed["mode"]) and followed["size"] == 10
    assert followed["ino"] == os.stat(cluster_path(f"{home}/target")).st_ino


def test_stat_errors(api, home):
    failed(api.get("/stat", targetPath=f"{home}/missing"), 400, "X-Not-Found")
    failed(api.get("/stat", targetPath="/home/bob/.bashrc"), 400, "X-Permission-Denied")


def test_symlink(site, api, home):
    api.upload(home, "target", b"T")
    response = api.post("/symlink", targetPath=f"{home}/target", linkPath=f"{home}/link")
    ok(response, 201, ("Success to symlink file.", "Success to link file."), "")
    assert os.readlink(cluster_path(f"{home}/link")) == f"{home}/target"
    # followed where the link lives (its target is the cluster's path, not where this machine mounts it)
    assert site.shell("alice", f"cat -- {shlex.quote(f'{home}/link')}", check=True).stdout == "T"


def test_symlink_description_follows_the_contract(api, home):
    """§6: the default description is `Success to <cmd> file.`; the command here is `symlink`."""
    response = api.post("/symlink", targetPath=f"{home}/anything", linkPath=f"{home}/link")
    ok(response, 201, "Success to symlink file.", "")


def test_symlink_errors(api, home):
    api.upload(home, "f", b"")
    failed(api.post("/symlink", targetPath=f"{home}/f", linkPath=f"{home}/f"), 400, "X-Exists")
    failed(api.post("/symlink", targetPath=f"{home}/f", linkPath=f"{home}/no/link"), 400, "X-Invalid-Path")
    failed(api.post("/symlink", targetPath=f"{home}/f", linkPath="/home/bob/link"), 400, "X-Permission-Denied")


# --- head, tail, view ----------------------------------------------------------------------------------------------

@pytest.fixture
def lines_file(api, home) -> str:
    api.upload(home, "lines.txt", LINES.encode())
    return f"{home}/lines.txt"


@pytest.mark.parametrize(
    ("tool", "query", "expected"),
    [
        ("head", {}, "".join(LINES.splitlines(keepends=True)[:10])),
        ("head", {"lines": "3"}, "line 01\nline 02\nline 03\n"),
        ("head", {"bytes": "10"}, "line 01\nli"),
        ("head", {"lines": "28", "skip_ending": "true"}, "line 01\nline 02\n"),
        ("head", {"bytes": str(len(LINES) - 8), "skip_ending": "true"}, "line 01\n"),
        ("tail", {}, "".join(LINES.splitlines(keepends=True)[-10:])),
        ("tail", {"lines": "2"}, "line 29\nline 30\n"),
        ("tail", {"bytes": "3"}, "30\n"),
        ("tail", {"lines": "29", "skip_beginning": "true"}, "line 29\nline 30\n"),
        ("tail", {"bytes": str(len(LINES) - 7), "skip_beginning": "true"}, "line 30\n"),
        ("head", {"lines": "0"}, ""),
    ],
)
def test_head_and_tail(api, lines_file, tool, query, expected):
    output = ok(api.get(f"/{tool}", targetPath=lines_file, **query), 200, f"Success to {tool} file.")
    assert output == expected


@pytest.mark.parametrize("tool", ["head", "tail"])
def test_head_and_tail_grep(api, lines_file, tool):
    query = {"lines": "30"}
    output = ok(api.get(f"/{tool}", targetPath=lines_file, grep="line 1", **query), 200, f"Success to {tool} file.")
    assert output == "".join(f"line {i}\n" for i in range(10, 20))
    # grep applies to the selected part only
    narrow = {"lines": "5"}
    assert ok(api.get(f"/{tool}", targetPath=lines_file, grep="0", **narrow), 200, f"Success to {tool} file.")
    missing = api.get(f"/{tool}", targetPath=lines_file, grep="no such text")
    assert failed(missing, 404, "X-Not-Found") == {"description": f"Error on {tool} operation with grep",
                                                    "error": "pattern not found"}


@pytest.mark.parametrize("tool", ["head", "tail"])
def test_head_and_tail_errors(api, home, lines_file, tool):
    failed(api.get(f"/{tool}", targetPath=lines_file, bytes="3", lines="3"), 400)
    failed(api.get(f"/{tool}", targetPath=lines_file, lines="many"), 400)
    failed(api.get(f"/{tool}", targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.get(f"/{tool}", targetPath="/home/bob/.bashrc"), 400, "X-Permission-Denied")
    failed(api.get(f"/{tool}", targetPath=home), 400, "X-A-Directory")


def test_view_returns_the_whole_file(api, lines_file):
    """Not upstream's 10 lines (utilities/routes.py: `view` returns the whole file)."""
    output = ok(api.get("/view", targetPath=lines_file), 200, ("Success to view file.", "Success to head file."))
    assert output == LINES


def test_view_errors(api, home):
    failed(api.get("/view", targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.get("/view", targetPath="/home/bob/.bashrc"), 400, "X-Permission-Denied")
    failed(api.get("/view", targetPath=home), 400, "X-A-Directory")


# --- checksum, whoami -------------------------------------------------------------------------------------------

def test_checksum(api, home):
    data = os.urandom(100_000)
    api.upload(home, "blob", data)
    response = api.get("/checksum", targetPath=f"{home}/blob")
    ok(response, 200, ("Success to checksum file.", "Checksum calculated."), hashlib.sha256(data).hexdigest())
    api.upload(home, "empty", b"")
    assert api.get("/checksum", targetPath=f"{home}/empty").json()["output"] == hashlib.sha256(b"").hexdigest()


def test_checksum_description_follows_the_contract(api, home):
    """§6: the default description is `Success to <cmd> file.`; upstream's checksum says exactly that."""
    api.upload(home, "f", b"x")
    ok(api.get("/checksum", targetPath=f"{home}/f"), 200, "Success to checksum file.", hashlib.sha256(b"x").hexdigest())


def test_checksum_errors(api, home):
    body = failed(api.get("/checksum", targetPath=home), 400, "X-A-Directory")
    assert body["description"] == "Error on checksum operation"
    failed(api.get("/checksum", targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.get("/checksum", targetPath="/home/bob/.bashrc"), 400, "X-Permission-Denied")


def test_whoami(api, bob_api):
    ok(api.get("/whoami"), 200, "User information", "alice")
    ok(bob_api.get("/whoami"), 200, "User information", "bob")
    groups = ok(api.get("/whoami", groups="true"), 200, "User information")
    assert groups["user"] == {"name": "alice", "id": str(ALICE.pw_uid)}
    assert groups["group"] == {"name": "alice", "id": str(ALICE.pw_gid)}


# --- download, upload --------------------------------------------------------------------------------------------

def attachment_name(response: requests.Response) -> str:
    kind, options = parse_options_header(response.headers["Content-Disposition"])
    assert kind == "attachment"
    return options["filename"]


def test_download(api, home):
    data = bytes(range(256)) * 200 + b"\r\n\x00tail"
    api.upload(home, "data.bin", data)
    response = api.get("/download", sourcePath=f"{home}/data.bin")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/octet-stream")
    assert response.content == data
    assert attachment_name(response) == "data.bin"


def test_download_of_an_empty_file(api, home):
    api.upload(home, "empty", b"")
    response = api.get("/download", sourcePath=f"{home}/empty")
    assert response.status_code == 200 and response.content == b"" and attachment_name(response) == "empty"


def test_download_at_the_size_limit(api, home):
    data = os.urandom(LIMIT)
    write_as(ALICE, f"{home}/five", data)
    response = api.get("/download", sourcePath=f"{home}/five", timeout=60)
    assert response.status_code == 200 and response.content == data


def test_download_errors(api, home):
    failed(api.get("/download", sourcePath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.get("/download", sourcePath="/home/bob/.bashrc"), 400, "X-Permission-Denied")
    failed(api.get("/download", sourcePath=home), 400, "X-A-Directory")


def test_upload_then_download_it_back(api, home):
    data = os.urandom(300_000)
    response = api.post("/upload", files={"file": ("up.bin", data)}, targetPath=home)
    ok(response, 201, "File upload successful", "")
    assert cluster_path(f"{home}/up.bin").read_bytes() == data
    assert os.stat(cluster_path(f"{home}/up.bin")).st_uid == ALICE.pw_uid
    back = api.get("/download", sourcePath=f"{home}/up.bin")
    assert back.status_code == 200 and back.content == data


def test_upload_an_empty_file(api, home):
    ok(api.post("/upload", files={"file": ("empty.txt", b"")}, targetPath=home), 201, "File upload successful", "")
    assert cluster_path(f"{home}/empty.txt").read_bytes() == b""
    back = api.get("/download", sourcePath=f"{home}/empty.txt")
    assert back.status_code == 200 and back.content == b""


def test_upload_replaces_an_existing_file(api, home):
    api.upload(home, "f", b"a much longer first version\n")
    api.upload(home, "f", b"short\n")
    assert cluster_path(f"{home}/f").read_bytes() == b"short\n"


def test_upload_seed_alias(api, home):
    """The seed's POST /utilities/{machinename}/upload: the machine in the path, no header needed."""
    response = api.request("POST", f"/{MACHINE}/upload", data={"targetPath": home},
                           files={"file": ("seed.txt", b"seed")}, machine=None)
    ok(response, 201, "File upload successful", "")
    assert cluster_path(f"{home}/seed.txt").read_bytes() == b"seed"


def test_upload_over_the_size_limit_is_413(api, home):
    response = api.post("/upload", files={"file": ("big", b"\0" * (6 * 1024 * 1024))}, targetPath=home, timeout=60)
    assert response.status_code == 413
    assert response.json() == {"description": f"Failed to upload file. The file is over {LIMIT} bytes"}
    assert os.listdir(cluster_path(home)) == []


def test_upload_errors(api, home):
    api.upload(home, "file", b"")
    send = {"file": ("u.txt", b"u")}
    failed(api.post("/upload", files=send, targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.post("/upload", files=dict(send), targetPath=f"{home}/file"), 400, "X-Not-A-Directory")
    failed(api.post("/upload", files=dict(send), targetPath="/home/bob"), 400, "X-Permission-Denied")
    failed(api.post("/upload", targetPath=home), 400)  # no file part at all
    assert os.listdir(cluster_path(home)) == ["file"]


# --- rm --------------------------------------------------------------------------------------------------------

def test_rm(api, home):
    api.mkdir(f"{home}/dir/sub")
    api.upload(f"{home}/dir/sub", "f", b"")
    api.upload(home, "g", b"")
    response = api.delete("/rm", targetPath=f"{home}/dir")
    assert response.status_code == 204 and response.content == b""
    assert os.listdir(cluster_path(home)) == ["g"]
    assert api.delete("/rm", targetPath=f"{home}/g").status_code == 204
    failed(api.get("/ls", targetPath=f"{home}/g"), 400, "X-Invalid-Path")


def test_rm_errors(api, home):
    failed(api.delete("/rm", targetPath=f"{home}/missing"), 400, "X-Invalid-Path")
    failed(api.delete("/rm", targetPath="/home/bob/.bashrc"), 400, "X-Permission-Denied")
    # the contract reads targetPath from the form body of the DELETE, not from the query string
    response = api.request("DELETE", "/rm", params={"targetPath": home})
    failed(response, 400, error="'targetPath' not specified")
    assert os.path.isdir(cluster_path(home))


# --- compress, extract -------------------------------------------------------------------------------------------

def test_compress_then_extract_tar_gz(api, home):
    api.mkdir(f"{home}/src/sub")
    api.upload(f"{home}/src", "a.txt", b"A\n")
    api.upload(f"{home}/src/sub", "b.bin", bytes(range(256)))
    response = api.post("/compress", sourcePath=f"{home}/src", targetPath=f"{home}/src.tar.gz")
    ok(response, 201, "Success to compress file.", "")
    with tarfile.open(cluster_path(f"{home}/src.tar.gz")) as archive:
        assert sorted(archive.getnames()) == ["src", "src/a.txt", "src/sub", "src/sub/b.bin"]
    api.mkdir(f"{home}/out")
    response = api.post("/extract", sourcePath=f"{home}/src.tar.gz", targetPath=f"{home}/out")
    ok(response, 201, "Success to extract file.", "")
    assert cluster_path(f"{home}/out/src/a.txt").read_bytes() == b"A\n"
    assert cluster_path(f"{home}/out/src/sub/b.bin").read_bytes() == bytes(range(256))
    assert os.stat(cluster_path(f"{home}/out/src/a.txt")).st_uid == ALICE.pw_uid


def test_compress_dereference(api, home):
    api.mkdir(f"{home}/real")
    api.upload(f"{home}/real", "f", b"F")
    os.symlink(f"{home}/real", cluster_path(f"{home}/link"))
    os.lchown(cluster_path(f"{home}/link"), ALICE.pw_uid, ALICE.pw_gid)
    ok(api.post("/compress", sourcePath=f"{home}/link", targetPath=f"{home}/kept.tgz"), 201,
       "Success to compress file.", "")
    with tarfile.open(cluster_path(f"{home}/kept.tgz")) as archive:
        assert [(m.name, m.issym()) for m in archive.getmembers()] == [("link", True)]
    ok(api.post("/compress", sourcePath=f"{home}/link", targetPath=f"{home}/followed.tgz", dereference="true"),
       201, "Success to compress file.", "")
    with tarfile.open(cluster_path(f"{home}/followed.tgz")) as archive:
        assert sorted(archive.getnames()) == ["link", "link/f"]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "kind"), [("arch.zip", ".zip"), ("arch.zip", "auto"), ("arch.zip", None),
                                             ("archive", ".zip"), ("archive", "zip")])
def test_extract_zip(api, home, name, kind):
    """The zip is made here (the API only makes tar.gz), uploaded, then extracted; `type` is honoured."""
    api.upload(home, name, zip_bytes({"z/one.txt": b"one\n", "two.txt": b"two\n"}))
    api.mkdir(f"{home}/out")
    form = {"sourcePath": f"{home}/{name}", "targetPath": f"{home}/out"} | ({"type": kind} if kind else {})
    ok(api.post("/extract", **form), 201, "Success to extract file.", "")
    assert cluster_path(f"{home}/out/z/one.txt").read_bytes() == b"one\n"
    assert cluster_path(f"{home}/out/two.txt").read_bytes() == b"two\n"


def test_compress_and_extract_errors(api, home):
    api.upload(home, "notes.txt", b"n")
    failed(api.post("/compress", sourcePath=f"{home}/missing", targetPath=f"{home}/x.tgz"), 400, "X-Invalid-Path")
    failed(api.post("/compress", sourcePath="/home/bob", targetPath=f"{home}/bob.tgz"), 400, "X-Permission-Denied")
    failed(api.post("/extract", sourcePath=f"{home}/missing.tar.gz", targetPath=home), 400, "X-Invalid-Path")
    body = failed(api.post("/extract", sourcePath=f"{home}/notes.txt", targetPath=home), 400)
    assert body["error"] == f"Unsupported file format in {home}/notes.txt."
    failed(api.post("/extract", sourcePath=f"{home}/notes.txt", targetPath=home, type=".rar"), 400)


# --- the same errors on every endpoint -------------------------------------------------------------------------

# (method, route, parameters of a well-formed call given the test directory; "file" means a multipart file part)
ENDPOINTS: dict[str, tuple[str, str, dict[str, str]]] = {
    "ls": ("GET", "/ls", {"targetPath": "{d}"}),
    "mkdir": ("POST", "/mkdir", {"targetPath": "{d}/new"}),
    "rename": ("PUT", "/rename", {"sourcePath": "{d}/f", "targetPath": "{d}/g"}),
    "chmod": ("PUT", "/chmod", {"targetPath": "{d}/f", "mode": "600"}),
    "chown": ("PUT", "/chown", {"targetPath": "{d}/f", "owner": "alice"}),
    "copy": ("POST", "/copy", {"sourcePath": "{d}/f", "targetPath": "{d}/g"}),
    "file": ("GET", "/file", {"targetPath": "{d}/f"}),
    "stat": ("GET", "/stat", {"targetPath": "{d}/f"}),
    "symlink": ("POST", "/symlink", {"targetPath": "{d}/f", "linkPath": "{d}/l"}),
    "head": ("GET", "/head", {"targetPath": "{d}/f"}),
    "tail": ("GET", "/tail", {"targetPath": "{d}/f"}),
    "view": ("GET", "/view", {"targetPath": "{d}/f"}),
    "checksum": ("GET", "/checksum", {"targetPath": "{d}/f"}),
    "download": ("GET", "/download", {"sourcePath": "{d}/f"}),
    "upload": ("POST", "/upload", {"targetPath": "{d}"}),
    "rm": ("DELETE", "/rm", {"targetPath": "{d}/f"}),
    "compress": ("POST", "/compress", {"sourcePath": "{d}/f", "targetPath": "{d}/f.tar.gz"}),
    "extract": ("POST", "/extract", {"sourcePath": "{d}/f.tar.gz", "targetPath": "{d}"}),
    "whoami": ("GET", "/whoami", {}),
}
REQUIRED = [(name, param) for name, (_, _, form) in ENDPOINTS.items() for param in form if param != "owner"]


def call(api: Api, name: str, home: str, drop: str | None = None, empty: str | None = None,
         machine: str | None = MACHINE) -> requests.Response:
    method, route, template = ENDPOINTS[name]
    values = {k: v.format(d=home) for k, v in template.items() if k != drop}
    if empty:
        values[empty] = ""
    files = {"file": ("u.txt", b"u")} if name == "upload" else None
    if method == "GET":
        return api.request(method, route, params=values, machine=machine)
    return api.request(method, route, data=values, files=files, machine=machine)


@pytest.mark.parametrize(("name", "param"), REQUIRED, ids=[f"{n}-{p}" for n, p in REQUIRED])
def test_missing_parameter(api, home, name, param):
    body = failed(call(api, name, home, drop=param), 400)
    if (name, param) == ("stat", "targetPath"):  # §6: stat also takes sourcePath, named when both are missing
        assert body["error"] in ("'targetPath' not specified", "'sourcePath' not specified")
    else:
        assert body["error"] == f"'{param}' not specified"
    assert os.listdir(cluster_path(home)) == []


@pytest.mark.parametrize(("name", "param"), REQUIRED, ids=[f"{n}-{p}" for n, p in REQUIRED])
def test_empty_parameter(api, home, name, param):
    assert failed(call(api, name, home, empty=param), 400)["error"] == f"'{param}' is empty"
    assert os.listdir(cluster_path(home)) == []


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_unknown_machine(api, home, name):
    response = call(api, name, home, machine="no-such-cluster")
    body = failed(response, 400, "X-Machine-Does-Not-Exist", "Machine does not exist")
    assert response.headers["X-Machine-Does-Not-Exist"] == "Machine does not exist"
    assert body["description"].startswith("Error on ")
    assert os.listdir(cluster_path(home)) == []


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_missing_machine_header(api, home, name):
    response = call(api, name, home, machine=None)
    assert response.status_code == 400
    assert response.json() == {"description": "No machine name given"}
    assert os.listdir(cluster_path(home)) == []


# --- permission denied on bob's files --------------------------------------------------------------------------

BOB_FILE = "/home/bob/.bashrc"  # denied whether or not it exists: /home/bob is bob's alone (0700)
ON_BOBS = {  # "{b}": a file of bob's in his home, with content to look for in the answers
    "ls": ("GET", "/ls", {"targetPath": "/home/bob"}),
    "view": ("GET", "/view", {"targetPath": "{b}"}),
    "head": ("GET", "/head", {"targetPath": "{b}"}),
    "tail": ("GET", "/tail", {"targetPath": "{b}"}),
    "checksum": ("GET", "/checksum", {"targetPath": "{b}"}),
    "download": ("GET", "/download", {"sourcePath": "{b}"}),
    "stat": ("GET", "/stat", {"targetPath": "{b}"}),
    "file": ("GET", "/file", {"targetPath": "{b}"}),
    "rm": ("DELETE", "/rm", {"targetPath": "{b}"}),
    "rename": ("PUT", "/rename", {"sourcePath": "{b}", "targetPath": "{d}/stolen"}),
    "copy": ("POST", "/copy", {"sourcePath": "{b}", "targetPath": "{d}/stolen"}),
    "mkdir": ("POST", "/mkdir", {"targetPath": "/home/bob/intruder"}),
    "symlink": ("POST", "/symlink", {"targetPath": "{d}", "linkPath": "/home/bob/intruder"}),
    "compress": ("POST", "/compress", {"sourcePath": "/home/bob", "targetPath": "{d}/bob.tgz"}),
    "extract-into": ("POST", "/extract", {"sourcePath": "{d}/a.tgz", "targetPath": "/home/bob"}),
    "chmod": ("PUT", "/chmod", {"targetPath": "{d}/bobs", "mode": "777"}),  # bob's file in alice's directory
    "chown": ("PUT", "/chown", {"targetPath": "{d}/bobs", "owner": "alice"}),
}


@pytest.mark.parametrize("name", list(ON_BOBS))
def test_permission_denied_on_bobs_files(api, home, bob_dir, name):
    bobs_own = bob_dir / "notes.txt"  # not a skeleton file: the compose site's homes have none
    notes = b"bob's own notes, private to bob: 41d8e2\n" * 4
    write_as(BOB, str(bobs_own), notes)
    write_as(BOB, f"{home}/bobs", b"bob's secret\n", 0o600)
    api.upload(home, "a.txt", b"a")
    api.post("/compress", sourcePath=f"{home}/a.txt", targetPath=f"{home}/a.tgz")
    before = sorted(os.listdir(cluster_path("/home/bob")))
    method, route, template = ON_BOBS[name]
    values = {k: v.format(d=home, b=str(bobs_own)) for k, v in template.items()}
    response = api.request(method, route, **({"params": values} if method == "GET" else {"data": values}))
    failed(response, 400, "X-Permission-Denied")
    # nothing of bob's leaks
    assert bobs_own.read_text()[:40] not in response.text and "secret" not in response.text
    assert sorted(os.listdir(cluster_path("/home/bob"))) == before
    assert not os.path.exists(cluster_path(f"{home}/stolen"))
    bobs = os.stat(cluster_path(f"{home}/bobs"))
    assert bobs.st_uid == BOB.pw_uid and st.S_IMODE(bobs.st_mode) == 0o600
    assert bobs_own.read_bytes() == notes and bobs_own.stat().st_uid == BOB.pw_uid


# --- timeouts and size limits ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("route", "param"), [("/head", "targetPath"), ("/tail", "targetPath"),
                                              ("/view", "targetPath"), ("/checksum", "targetPath"),
                                              ("/download", "sourcePath")])
def test_reading_a_fifo_times_out_and_leaves_nothing_running(api, home, route, param):
    fifo = f"{home}/fifo"
    fifo_as(ALICE, fifo)
    started = time.monotonic()
    response = api.get(route, **{param: fifo})
    assert time.monotonic() - started < 15
    body = failed(response, 400, "X-Timeout", TIMEOUT_TEXT)
    assert response.headers["X-Timeout"] == TIMEOUT_TEXT
    assert body["description"].startswith("Error on ")
    # the command (head, tail, sha256sum) that blocked on the FIFO is gone, not left behind on the login node
    deadline = time.monotonic() + 3
    while processes(ALICE.pw_uid, fifo) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes(ALICE.pw_uid, fifo) == []


@pytest.mark.parametrize(("route", "param"), [("/view", "targetPath"), ("/download", "sourcePath")])
def test_over_the_size_limit_is_refused_never_partial(api, home, route, param):
    write_as(ALICE, f"{home}/big", b"A" * (LIMIT + 1024 * 1024))
    response = api.get(route, **{param: f"{home}/big"}, timeout=60)
    body = failed(response, 400, "X-Size-Limit")
    assert response.headers["X-Size-Limit"] == "File exceeds size limit"
    assert "output" not in body and len(response.content) < 1000 and "AAAA" not in response.text


def test_download_over_the_size_limit_has_the_contract_body(api, home):
    """§6: download over the limit is 400 X-Size-Limit, described as "Failed to download file" (the `error`
    detail is ours: upstream sent the description alone)."""
    write_as(ALICE, f"{home}/big", b"A" * (LIMIT + 1))
    response = api.get("/download", sourcePath=f"{home}/big", timeout=60)
    assert response.status_code == 400 and "X-Size-Limit" in response.headers
    assert response.json() == {"description": "Failed to download file", "error": "File exceeds size limit"}
