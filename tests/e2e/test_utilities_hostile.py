"""Hostile values in the utilities API: names, paths, modes, owners, patterns and the machine header.

A value reaches the login node as one argv word (common/commands.py quotes it, the login node's wrapper splits it
back without a shell), so every case must end in one of two ways: the literal operation (mkdir makes a directory
with exactly that name), or a 400 with a clear JSON message. A canary proves that nothing was injected: the values
embed `touch <canary>` in every shell syntax, and afterwards no file of that name exists anywhere in alice's home
(an injected command runs in her home) or in /tmp. Every call carries an X-Request-ID, and each test's teardown
checks that the login node's audit log has its commands, all run as the caller.
"""

from __future__ import annotations

import functools
import io
import os
import pwd
import shlex
import shutil
import stat as st
import subprocess
import tarfile
import time
import urllib.parse
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
PODMAN = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "podman"
ALICE = pwd.getpwnam("alice")
BOB = pwd.getpwnam("bob")

# Names that hold no "/" and no control character: each must come out literally. "{c}" is the canary's name.
HOSTILE = [
    "with space",
    "it's",
    'say "hi"',
    "$(touch {c})",
    "`touch {c}`",
    "x; touch {c}",
    "x | touch {c}",
    "x && touch {c}",
    "x & touch {c} &",
    "x > {c}",
    "x < {c}",
    "'; touch {c}; '",
    '"; touch {c}; "',
    "'$(touch {c})'",
    "$(touch${{IFS}}{c})",
    "\\$(touch {c})",
    "-rf",
    "--help",
    "-",
    "...",
    "ünïcødé ☃ 漢字",
    "*",
    "?",
    "[a-z]",
    "{{a,b}}",
    "~",
    "~root",
    "$HOME",
    "${{HOME}}",
    "\\",
    "back\\slash\\n",
    "x -> y",
    " lead",
    "trail ",
    "%s%n%x%00",
    "#comment",
    "=x",
    "a&b=c",
    "a+b",
    "!{c}",
]
CONTROL = ["\n", "\r", "\t", "\x00", "\x01", "\x1b", "\x7f"]



def ident(value: str) -> str:
    return value.encode("unicode_escape").decode("ascii")[:40] or "empty"


class Api(gateway_client.Api):
    """Calls `<gateway>/utilities/...` as one user; remembers each call's X-Request-ID and status for the audit."""

    def __init__(self, site, user: str) -> None:
        super().__init__(site, user, "utilities")

    def put(self, path: str, **form: object) -> requests.Response:
        return self.request("PUT", path, data=form)

    def delete(self, path: str, **form: object) -> requests.Response:
        return self.request("DELETE", path, data=form)

    def upload_as(self, directory: str, filename: str, data: bytes) -> requests.Response:
        """A multipart upload with the file name sent as RFC 2231 `filename*` (any character, exactly)."""
        boundary = uuid.uuid4().hex
        quoted = urllib.parse.quote(filename, safe="")
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="targetPath"\r\n\r\n'.encode()
            + directory.encode()
            + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''{quoted}\r\n"
              "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request("POST", "/upload", data=body,
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def assert_audited(site, api: Api) -> None:
    """Every call that succeeded ran on the login node, and every command of these calls ran as the caller."""
    wanted = {rid for rid, status in api.calls if 200 <= status < 300}
    everything = {rid for rid, _ in api.calls}
    deadline = time.monotonic() + 10
    while True:
        records = site.audit_records(everything)
        missing = wanted - {r["request_id"] for r in records}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"no audit record for {sorted(missing)}"
    uid = pwd.getpwnam(api.user).pw_uid
    for record in records:
        assert (record["user"], record["uid"]) == (api.user, uid), record
        assert record["key_id"].startswith(f"{api.user}@"), record


@pytest.fixture
def api(site) -> Iterator[Api]:
    client = Api(site, "alice")
    yield client
    assert_audited(site, client)


@pytest.fixture
def bob_api(site) -> Iterator[Api]:
    client = Api(site, "bob")
    yield client
    assert_audited(site, client)


@pytest.fixture
def home(api) -> Iterator[str]:
    """A fresh directory of alice's, made through the API and removed through the API."""
    path = f"/home/alice/t-{uuid.uuid4().hex[:12]}"
    assert api.post("/mkdir", targetPath=path).status_code == 201
    yield path
    removed = api.delete("/rm", targetPath=path)
    if os.path.lexists(local := cluster_path(path)):
        shutil.rmtree(local)
    assert removed.status_code == 204, removed.text


@functools.cache
def container_pid(container: str) -> int:
    inspected = subprocess.run([str(PODMAN), "inspect", "--format", "{{.State.Pid}}", container],
                               capture_output=True, text=True, check=True)
    return int(inspected.stdout)


def roots(site) -> list[str]:
    """Where this machine sees the root filesystem of the login node (commands run there as the caller) and of the
    utilities service: on the native site both are this machine's; on the compose site each container's, through
    /proc (a restarted container fails here rather than passing unseen)."""
    if not site.compose:
        return [""]
    found = []
    for container in (site.env["FIRECREST_LOGIN_CONTAINER"], f"{site.env['FIRECREST_COMPOSE_PROJECT']}_utilities_1"):
        root = f"/proc/{container_pid(container)}/root"
        assert os.path.isdir(f"{root}/tmp"), f"{container} is not running as pid {container_pid(container)}"
        found.append(root)
    return found


def on_the_site(site, paths: list[str]) -> list[str]:
    """Which of `paths` (outside the shared /home and /scratch: /tmp, /) exist, even as a dangling link, where an
    injected command could have run."""
    return [f"{root or '/'}:{path}" for root in roots(site) for path in paths if os.path.lexists(root + path)]


class Canary:
    def __init__(self, site) -> None:
        self.site = site
        self.name = f"canary-{uuid.uuid4().hex[:12]}"

    def fill(self, template: str) -> str:
        return template.format(c=self.name)

    def assert_absent(self) -> None:
        assert not os.path.lexists(cluster_path(f"/home/alice/{self.name}")), f"injected: /home/alice/{self.name}"
        assert on_the_site(self.site, [f"/tmp/{self.name}", f"/{self.name}"]) == [], f"injected: {self.name}"
        for root, dirs, files in os.walk(cluster_path("/home/alice")):
            assert self.name not in dirs + files, f"injected: {root}/{self.name}"


@pytest.fixture
def canary(site) -> Iterator[Canary]:
    c = Canary(site)
    yield c
    c.assert_absent()


def write_as(user: pwd.struct_passwd, path: str, data: bytes, mode: int = 0o644) -> None:
    local = cluster_path(path)
    local.write_bytes(data)
    os.chown(local, user.pw_uid, user.pw_gid)
    os.chmod(local, mode)


def ok(response: requests.Response, status: int) -> object:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"description", "output"}
    return body["output"]


def refused(response: requests.Response, status: int = 400, header: str | None = None) -> dict:
    """A clean refusal: the status, a JSON body with a description (and the header, if one is named)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("description"), str) and body["description"]
    if header:
        assert header in response.headers, (dict(response.headers), body)
    return body


def listed(api: Api, path: str) -> list[str]:
    return sorted(e["name"] for e in ok(api.get("/ls", targetPath=path, showhidden="true"), 200))


# --- names: mkdir, ls, stat, rm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("template", HOSTILE, ids=ident)
def test_mkdir_ls_stat_rm_take_a_hostile_name_literally(api, home, canary, template):
    name = canary.fill(template)
    path = f"{home}/{name}"
    assert ok(api.post("/mkdir", targetPath=path), 201) == ""
    assert os.listdir(cluster_path(home)) == [name] and os.path.isdir(cluster_path(path))
    assert listed(api, home) == [name]
    assert ok(api.get("/ls", targetPath=path), 200) == []
    assert st.S_ISDIR(ok(api.get("/stat", targetPath=path), 200)["mode"])
    refused(api.post("/mkdir", targetPath=path), 400, "X-Exists")
    response = api.delete("/rm", targetPath=path)
    assert response.status_code == 204, response.text
    assert os.listdir(cluster_path(home)) == []
    canary.assert_absent()


def deep_path(home: str, length: int) -> str:
    path = f"{home}/" + "/".join(["d" * 200] * 19)
    path += "/" + "e" * (length - len(path) - 1)
    assert len(path) == length
    return path


def test_the_longest_name_is_taken_and_a_longer_one_refused(api, home):
    name = "n" * 255  # NAME_MAX
    assert ok(api.post("/mkdir", targetPath=f"{home}/{name}"), 201) == ""
    assert os.listdir(cluster_path(home)) == [name]
    body = refused(api.post("/mkdir", targetPath=f"{home}/{'m' * 256}"), 400)
    assert "File name too long" in body["error"]
    assert os.listdir(cluster_path(home)) == [name]


def test_a_4_kb_path_is_a_path_like_any_other(api, home):
    """4095 characters (PATH_MAX less its NUL) in a form field (mkdir) and in a query string (ls, stat)."""
    deep = deep_path(home, 4095)
    assert ok(api.post("/mkdir", targetPath=deep, p=""), 201) == ""
    # relative to the test directory: where the compose site's volume is mounted here, the whole path is too long
    local = os.open(cluster_path(home), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert st.S_ISDIR(os.stat(deep.removeprefix(f"{home}/"), dir_fd=local).st_mode)
    finally:
        os.close(local)
    assert ok(api.get("/ls", targetPath=deep), 200) == []
    assert st.S_ISDIR(ok(api.get("/stat", targetPath=deep), 200)["mode"])


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_path_over_4096_characters_is_a_json_400(api, home, method):
    """Over the limit the service refuses before anything runs, with its JSON error, in a form or a query."""
    value = deep_path(home, 4097)
    response = api.post("/mkdir", targetPath=value, p="") if method == "POST" else api.get("/ls", targetPath=value)
    body = refused(response, 400)
    assert "'targetPath'" in body["error"]
    assert os.listdir(cluster_path(home)) == []


@pytest.mark.parametrize(
    ("method", "route", "form"),
    [
        ("GET", "/ls", {"targetPath": "{long}"}),
        ("POST", "/copy", {"sourcePath": "{long}", "targetPath": "{home}/x"}),
        ("POST", "/symlink", {"targetPath": "{home}", "linkPath": "{long}"}),
        ("PUT", "/chmod", {"targetPath": "{home}", "mode": "{long}"}),
        ("PUT", "/chown", {"targetPath": "{home}", "owner": "{long}"}),
        ("GET", "/head", {"targetPath": "{home}/f", "grep": "{long}"}),
    ],
    ids=["ls", "copy", "symlink", "chmod", "chown", "grep"],
)
def test_values_over_4096_characters_are_refused(api, home, method, route, form):
    values = {k: v.format(home=home, long="/" + "x" * 4096) for k, v in form.items()}
    response = api.request(method, route, **({"params": values} if method == "GET" else {"data": values}))
    refused(response, 400)
    assert os.listdir(cluster_path(home)) == []


# --- control characters ------------------------------------------------------------------------------------------

CONTROLLED = [  # (method, route, the parameter that gets the control character, the other parameters)
    ("POST", "/mkdir", "targetPath", {}),
    ("GET", "/ls", "targetPath", {}),
    ("GET", "/stat", "targetPath", {}),
    ("GET", "/view", "targetPath", {}),
    ("GET", "/download", "sourcePath", {}),
    ("PUT", "/rename", "sourcePath", {"targetPath": "{home}/t"}),
    ("PUT", "/rename", "targetPath", {"sourcePath": "{home}/f"}),
    ("POST", "/copy", "targetPath", {"sourcePath": "{home}/f"}),
    ("POST", "/symlink", "linkPath", {"targetPath": "{home}/f"}),
    ("PUT", "/chmod", "mode", {"targetPath": "{home}/f"}),
    ("PUT", "/chown", "owner", {"targetPath": "{home}/f"}),
    ("POST", "/compress", "targetPath", {"sourcePath": "{home}/f"}),
    ("POST", "/extract", "targetPath", {"sourcePath": "{home}/f.tar.gz"}),
    ("DELETE", "/rm", "targetPath", {}),
]


@pytest.mark.parametrize("char", CONTROL, ids=ident)
@pytest.mark.parametrize(("method", "route", "param", "others"), CONTROLLED,
                         ids=[f"{r.strip('/')}-{p}" for _, r, p, _ in CONTROLLED])
def test_control_characters_are_refused(api, home, canary, method, route, param, others, char):
    write_as(ALICE, f"{home}/f", b"f\n")
    value = canary.fill(f"{home}/x{char}touch {{c}}") if param.endswith("Path") else f"7{char}touch {canary.name}"
    values = {k: v.format(home=home) for k, v in others.items()} | {param: value}
    response = api.request(method, route, **({"params": values} if method == "GET" else {"data": values}))
    body = refused(response, 400)
    assert body["error"] == f"'{param}' has invalid char"
    assert os.listdir(cluster_path(home)) == ["f"]
    canary.assert_absent()


@pytest.mark.parametrize("char", CONTROL, ids=ident)
def test_control_characters_in_grep_never_run(api, home, canary, char):
    write_as(ALICE, f"{home}/f", b"a\nb\n")
    response = api.get("/head", targetPath=f"{home}/f", grep=f"a{char}touch {canary.name}")
    # refused, or a literal search that finds nothing (one line cannot hold a newline)
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"] in ("'grep' has invalid char", "pattern not found")
    canary.assert_absent()


# --- leading dashes as whole values (relative to the home directory) -------------------------------------------

DASHED = ["-rf", "--help", "--version", "-rf.tar.gz", "--link"]


@pytest.fixture
def dashed(api) -> Iterator[None]:
    """Values that begin with "-" are relative paths in alice's home; whatever a test leaves is removed."""
    for name in DASHED:
        assert not os.path.lexists(cluster_path(f"/home/alice/{name}")), f"/home/alice/{name} is in the way"
    yield
    for name in DASHED:
        path = f"/home/alice/{name}"
        if os.path.lexists(cluster_path(path)):
            api.delete("/rm", targetPath=name)
        if os.path.isdir(cluster_path(path)) and not os.path.islink(cluster_path(path)):
            shutil.rmtree(cluster_path(path))
        elif os.path.lexists(cluster_path(path)):
            os.unlink(cluster_path(path))


def test_leading_dash_values_are_operands_not_options(api, dashed):
    assert ok(api.post("/mkdir", targetPath="-rf"), 201) == ""
    assert os.path.isdir(cluster_path("/home/alice/-rf"))
    response = api.upload_as("-rf", "--help", b"not an option\n")
    assert response.status_code == 201, response.text
    assert cluster_path("/home/alice/-rf/--help").read_bytes() == b"not an option\n"
    assert listed(api, "-rf") == ["--help"]
    assert ok(api.get("/view", targetPath="-rf/--help"), 200) == "not an option\n"
    assert ok(api.get("/head", targetPath="-rf/--help", lines="1"), 200) == "not an option\n"
    assert ok(api.get("/tail", targetPath="-rf/--help", bytes="7"), 200) == "option\n"
    assert len(ok(api.get("/checksum", targetPath="-rf/--help"), 200)) == 64
    assert ok(api.get("/file", targetPath="-rf"), 200) == "directory"
    assert st.S_ISDIR(ok(api.get("/stat", targetPath="-rf"), 200)["mode"])
    download = api.get("/download", sourcePath="-rf/--help")
    assert download.status_code == 200 and download.content == b"not an option\n"
    ok(api.put("/chmod", targetPath="-rf", mode="700"), 200)
    assert st.S_IMODE(os.stat(cluster_path("/home/alice/-rf")).st_mode) == 0o700
    ok(api.put("/chown", targetPath="-rf", group="alice"), 200)


def test_leading_dash_values_copy_rename_link_compress_extract_rm(api, dashed):
    assert ok(api.post("/mkdir", targetPath="-rf"), 201) == ""
    assert api.upload_as("-rf", "--help", b"x").status_code == 201
    ok(api.post("/copy", sourcePath="-rf", targetPath="--help"), 201)
    assert cluster_path("/home/alice/--help/--help").read_bytes() == b"x"
    ok(api.put("/rename", sourcePath="--help", targetPath="--version"), 200)
    assert not os.path.lexists(cluster_path("/home/alice/--help"))
    assert os.path.isdir(cluster_path("/home/alice/--version"))
    ok(api.post("/symlink", targetPath="-rf", linkPath="--link"), 201)
    assert os.readlink(cluster_path("/home/alice/--link")) == "-rf"
    ok(api.post("/compress", sourcePath="-rf", targetPath="-rf.tar.gz"), 201)
    with tarfile.open(cluster_path("/home/alice/-rf.tar.gz")) as archive:
        assert sorted(archive.getnames()) == ["-rf", "-rf/--help"]
    ok(api.post("/extract", sourcePath="-rf.tar.gz", targetPath="--version"), 201)
    assert cluster_path("/home/alice/--version/-rf/--help").read_bytes() == b"x"
    for name in ("--link", "-rf.tar.gz", "--version", "-rf"):
        response = api.delete("/rm", targetPath=name)
        assert response.status_code == 204, response.text
        assert not os.path.lexists(cluster_path(f"/home/alice/{name}"))


@pytest.mark.parametrize("mode", ["-w", "-x", "-rwx"])
def test_a_mode_with_a_leading_dash_is_a_mode(api, home, mode):
    """`chmod -w` is a valid mode, not an option: it removes the bits (and nothing else happens)."""
    write_as(ALICE, f"{home}/f", b"", 0o777 & ~0o022)
    ok(api.put("/chmod", targetPath=f"{home}/f", mode=mode), 200)
    expected = {"-w": 0o555, "-x": 0o644, "-rwx": 0o000}[mode]
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/f")).st_mode) == expected


# --- upload file names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", HOSTILE + ["x" * 255], ids=ident)
def test_upload_hostile_file_name_is_literal(api, home, canary, template):
    name = canary.fill(template)
    response = api.upload_as(home, name, b"payload\n")
    assert ok(response, 201) == ""
    assert os.listdir(cluster_path(home)) == [name]
    assert (cluster_path(home) / name).read_bytes() == b"payload\n"
    back = api.get("/download", sourcePath=f"{home}/{name}")
    assert back.status_code == 200 and back.content == b"payload\n"
    canary.assert_absent()


@pytest.mark.parametrize(
    "name",
    ["plain.txt", "report 2024 (final).txt", 'say "hi".txt', 'x"; filename="evil.txt', "a;b=c.txt", "it's.txt",
     "ünïcødé ☃.txt", "back\\slash", "%41%0d%0a.txt"],
    ids=ident,
)
def test_download_attachment_is_named_after_the_file(api, home, name):
    """§6: an attachment named basename(p): the real name, quoted so that it stays one parameter."""
    write_as(ALICE, f"{home}/{name}", b"data")
    response = api.get("/download", sourcePath=f"{home}/{name}")
    assert response.status_code == 200 and response.content == b"data"
    disposition = response.headers["Content-Disposition"]
    kind, options = parse_options_header(disposition)
    assert kind == "attachment"
    assert options["filename"] == name, disposition


@pytest.mark.parametrize("name", ["it's.txt", 'say "hi".txt', "sp ace.txt", "ünï ☃.txt", "$(id).txt", "a;b|c&d"],
                         ids=ident)
def test_upload_hostile_file_name_as_requests_sends_it(api, home, name):
    """The same through a plain `requests` multipart (what pyfirecrest sends)."""
    ok(api.post("/upload", files={"file": (name, b"p")}, targetPath=home), 201)
    assert os.listdir(cluster_path(home)) == [name]


@pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", "/x", "sub/../x", "x" * 256]
                         + [f"a{c}b" for c in CONTROL], ids=ident)
def test_upload_refuses_file_names_that_are_not_one_name(site, api, home, name):
    os.mkdir(cluster_path(f"{home}/sub"))
    os.chown(cluster_path(f"{home}/sub"), ALICE.pw_uid, ALICE.pw_gid)
    before = sorted(os.listdir(cluster_path("/home/alice")))
    refused(api.upload_as(f"{home}/sub", name, b"x"), 400)
    assert os.listdir(cluster_path(f"{home}/sub")) == [] and os.listdir(cluster_path(home)) == ["sub"]
    assert sorted(os.listdir(cluster_path("/home/alice"))) == before and on_the_site(site, ["/x"]) == []


@pytest.mark.parametrize("template", HOSTILE[:16], ids=ident)
def test_upload_into_a_hostile_directory(api, home, canary, template):
    directory = f"{home}/{canary.fill(template)}"
    ok(api.post("/mkdir", targetPath=directory), 201)
    ok(api.post("/upload", files={"file": ("f.txt", b"in")}, targetPath=directory), 201)
    assert (cluster_path(directory) / "f.txt").read_bytes() == b"in"
    canary.assert_absent()


def test_upload_target_with_dot_dot_is_a_plain_path(api, home):
    ok(api.post("/mkdir", targetPath=f"{home}/sub"), 201)
    ok(api.post("/upload", files={"file": ("f.txt", b"up")}, targetPath=f"{home}/sub/.."), 201)
    assert sorted(os.listdir(cluster_path(home))) == ["f.txt", "sub"]


# --- rename, copy, symlink ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", HOSTILE, ids=ident)
def test_rename_and_copy_with_hostile_names(api, home, canary, template):
    name = canary.fill(template)
    write_as(ALICE, f"{home}/plain", b"content")
    ok(api.put("/rename", sourcePath=f"{home}/plain", targetPath=f"{home}/{name}"), 200)
    assert os.listdir(cluster_path(home)) == [name]
    ok(api.post("/copy", sourcePath=f"{home}/{name}", targetPath=f"{home}/{name}.copy"), 201)
    assert sorted(os.listdir(cluster_path(home))) == sorted([name, f"{name}.copy"])
    assert (cluster_path(home) / f"{name}.copy").read_bytes() == b"content"
    ok(api.put("/rename", sourcePath=f"{home}/{name}.copy", targetPath=f"{home}/back"), 200)
    assert sorted(os.listdir(cluster_path(home))) == sorted([name, "back"])
    canary.assert_absent()


@pytest.mark.parametrize("template", HOSTILE, ids=ident)
def test_symlink_with_a_hostile_target_and_link_name(api, home, canary, template):
    text = canary.fill(template)
    ok(api.post("/symlink", targetPath=text, linkPath=f"{home}/{text}"), 201)
    assert os.listdir(cluster_path(home)) == [text]
    assert os.readlink(cluster_path(f"{home}/{text}")) == text  # the link's target is the text itself, never evaluated
    [entry] = ok(api.get("/ls", targetPath=home, showhidden="true"), 200)
    assert (entry["name"], entry["type"], entry["link_target"]) == (text, "l", text)
    canary.assert_absent()


# --- chmod, chown ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "template",
    ["+x; touch {c}", "-R 777", "777 /home/alice", "777 -R", "$(touch {c})", "`touch {c}`", "u+x && touch {c}",
     "--reference=/home/bob/.bashrc", "0777'", "7777777", "u=rwx|touch {c}", "a+rwx > {c}", "--help", "-v"],
    ids=ident,
)
def test_chmod_hostile_mode_is_an_invalid_mode(api, home, canary, template):
    write_as(ALICE, f"{home}/f", b"")
    os.mkdir(cluster_path(f"{home}/d"))
    os.chown(cluster_path(f"{home}/d"), ALICE.pw_uid, ALICE.pw_gid)
    response = api.put("/chmod", targetPath=f"{home}/f", mode=canary.fill(template))
    body = refused(response, 400, "X-Invalid-Mode")
    assert "invalid mode" in body["error"]
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/f")).st_mode) == 0o644
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/d")).st_mode) == 0o755
    assert st.S_IMODE(os.stat(cluster_path("/home/alice")).st_mode) == 0o700
    canary.assert_absent()


@pytest.mark.parametrize("template", HOSTILE[:20], ids=ident)
def test_chmod_and_chown_on_a_hostile_path(api, home, canary, template):
    name = canary.fill(template)
    write_as(ALICE, f"{home}/{name}", b"")
    ok(api.put("/chmod", targetPath=f"{home}/{name}", mode="600"), 200)
    assert st.S_IMODE(os.stat(cluster_path(f"{home}/{name}")).st_mode) == 0o600
    ok(api.put("/chown", targetPath=f"{home}/{name}", owner="alice", group="alice"), 200)
    canary.assert_absent()


@pytest.mark.parametrize(
    ("field", "template"),
    [("owner", v) for v in ["alice; touch {c}", "$(touch {c})", "`touch {c}`", "-R", "--reference=/home/bob",
                            "--from=alice", "alice:bob", "alice bob", "0", "root", "bob", "../bob", "*"]]
    + [("group", v) for v in ["alice; touch {c}", "$(touch {c})", "-R", "bob", "root", "0", "alice:x"]],
    ids=ident,
)
def test_chown_hostile_owner_or_group_is_refused(api, home, canary, field, template):
    write_as(ALICE, f"{home}/f", b"")
    response = api.put("/chown", targetPath=f"{home}/f", **{field: canary.fill(template)})
    assert response.status_code == 400, response.text
    assert any(h in response.headers for h in ("X-Invalid-Owner", "X-Invalid-Group", "X-Permission-Denied"))
    owned = os.stat(cluster_path(f"{home}/f"))
    assert (owned.st_uid, owned.st_gid) == (ALICE.pw_uid, ALICE.pw_gid)
    canary.assert_absent()


# --- head/tail grep --------------------------------------------------------------------------------------------------

GREP_FILE = [
    "plain line",
    "x; touch {c}",
    "$(touch {c})",
    "`touch {c}`",
    "'quoted' \"double\"",
    "a | b && c",
    "-v --help -e",
    "back\\slash",
    "ünï ☃",
    "star * and dot .",
]


@pytest.mark.parametrize(
    "template",
    ["x; touch {c}", "$(touch {c})", "`touch {c}`", "'", "\"", "'quoted' \"double\"", "| b &&", "-v", "--help",
     "-e", "\\", "ünï", "*", ".", ".*", "^plain", "'; touch {c}; '", "\"; touch {c}; \"", "$(touch {c}) x", "[a-z]",
     "--regexp=plain"],
    ids=ident,
)
@pytest.mark.parametrize("tool", ["head", "tail"])
def test_grep_pattern_is_a_fixed_string(api, home, canary, tool, template):
    lines = [canary.fill(line) for line in GREP_FILE]
    write_as(ALICE, f"{home}/f", "".join(f"{line}\n" for line in lines).encode())
    pattern = canary.fill(template)
    expected = "".join(f"{line}\n" for line in lines if pattern in line)
    response = api.get(f"/{tool}", targetPath=f"{home}/f", grep=pattern, lines="100")
    if expected:
        assert ok(response, 200) == expected
    else:
        body = refused(response, 404, "X-Not-Found")
        assert body == {"description": f"Error on {tool} operation with grep", "error": "pattern not found"}
    canary.assert_absent()


# --- ls of hostile paths -------------------------------------------------------------------------------------------

def test_ls_does_not_expand_globs_or_variables(api, home, canary):
    for name in ("a", "b"):
        write_as(ALICE, f"{home}/{name}", b"")
    for pattern in ("*", "?", "[ab]", "{a,b}", "$(echo a)", "`echo a`", "a b", "a;b"):
        refused(api.get("/ls", targetPath=f"{home}/{pattern}"), 400, "X-Invalid-Path")
    write_as(ALICE, f"{home}/*", b"")
    [entry] = ok(api.get("/ls", targetPath=f"{home}/*"), 200)
    assert entry["name"] == f"{home}/*"
    for relative in ("~", "~alice", "$HOME", "${HOME}", "~/", canary.fill("$(touch {c})")):
        refused(api.get("/ls", targetPath=relative), 400, "X-Invalid-Path")
    canary.assert_absent()


def test_ls_of_dot_dot_is_the_parent(api, home):
    assert os.path.basename(home) in [e["name"] for e in ok(api.get("/ls", targetPath=f"{home}/.."), 200)]


# --- rm ---------------------------------------------------------------------------------------------------------

def test_rm_takes_its_value_literally(api, home):
    for name in ("a", "b", "*", "a b"):
        write_as(ALICE, f"{home}/{name}", b"")
    assert api.delete("/rm", targetPath=f"{home}/*").status_code == 204
    assert sorted(os.listdir(cluster_path(home))) == ["a", "a b", "b"]
    assert api.delete("/rm", targetPath=f"{home}/a b").status_code == 204
    assert sorted(os.listdir(cluster_path(home))) == ["a", "b"]
    refused(api.delete("/rm", targetPath=f"{home}/a b"), 400, "X-Invalid-Path")
    refused(api.delete("/rm", targetPath=f"{home}/?"), 400, "X-Invalid-Path")
    assert sorted(os.listdir(cluster_path(home))) == ["a", "b"]


@pytest.mark.parametrize("suffix", ["/..", "/.", "/../."])
def test_rm_refuses_dot_and_dot_dot(api, home, suffix):
    write_as(ALICE, f"{home}/keep", b"")
    refused(api.delete("/rm", targetPath=f"{home}{suffix}"), 400)
    assert os.listdir(cluster_path(home)) == ["keep"] and os.path.isdir(cluster_path("/home/alice"))


# --- compress, extract -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", HOSTILE[:16] + ["ünïcødé ☃ 漢字", "-rf", "--help", "~", "$HOME", "*"], ids=ident)
def test_compress_and_extract_hostile_paths(api, home, canary, template):
    name = canary.fill(template)
    os.mkdir(cluster_path(f"{home}/{name}"))
    os.chown(cluster_path(f"{home}/{name}"), ALICE.pw_uid, ALICE.pw_gid)
    write_as(ALICE, f"{home}/{name}/inner {name}", b"inside")
    archive = f"{home}/{name}.tar.gz"
    ok(api.post("/compress", sourcePath=f"{home}/{name}", targetPath=archive), 201)
    with tarfile.open(cluster_path(archive)) as tar:
        assert sorted(tar.getnames()) == sorted([name, f"{name}/inner {name}"])
    out = f"{home}/out {name}"
    ok(api.post("/mkdir", targetPath=out), 201)
    ok(api.post("/extract", sourcePath=archive, targetPath=out), 201)
    assert (cluster_path(out) / name / f"inner {name}").read_bytes() == b"inside"
    canary.assert_absent()


def test_compress_to_an_archive_with_the_longest_name(api, home):
    """An archive name of NAME_MAX (255) characters is a valid target, like any other file name."""
    write_as(ALICE, f"{home}/f", b"f")
    archive = "a" * (255 - len(".tar.gz")) + ".tar.gz"
    ok(api.post("/compress", sourcePath=f"{home}/f", targetPath=f"{home}/{archive}"), 201)
    assert sorted(os.listdir(cluster_path(home))) == sorted(["f", archive])
    with tarfile.open(cluster_path(f"{home}/{archive}")) as tar:
        assert tar.getnames() == ["f"]


@pytest.mark.parametrize("kind", ["; touch {c}", ".zip; touch {c}", "$(touch {c})", "../zip", ".exe", "-xf"],
                         ids=ident)
def test_extract_hostile_type_is_refused(api, home, canary, kind):
    write_as(ALICE, f"{home}/a.tar.gz", b"")
    body = refused(api.post("/extract", sourcePath=f"{home}/a.tar.gz", targetPath=home, type=canary.fill(kind)), 400)
    assert "Unsupported file format" in body["error"]
    canary.assert_absent()


def tar_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archive_members_do_not_escape_the_target(site, api, home, kind):
    escape = f"escape-{uuid.uuid4().hex[:8]}"
    members = {f"../{escape}": b"x", f"../../{escape}": b"x", f"/tmp/{escape}": b"x", "fine.txt": b"fine"}
    data = tar_with(members) if kind == "tar.gz" else zip_with(members)
    write_as(ALICE, f"{home}/evil.{kind}", data)
    os.mkdir(cluster_path(f"{home}/out"))
    os.chown(cluster_path(f"{home}/out"), ALICE.pw_uid, ALICE.pw_gid)
    response = api.post("/extract", sourcePath=f"{home}/evil.{kind}", targetPath=f"{home}/out")
    assert response.status_code in (201, 400), response.text  # refusing the archive is fine; escaping is not
    for place in (home, "/home/alice", "/home"):
        assert not os.path.lexists(cluster_path(f"{place}/{escape}"))
    assert on_the_site(site, [f"/tmp/{escape}"]) == []


# --- the machine header -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "template",
    ["cluster; touch {c}", "$(touch {c})", "`touch {c}`", "cluster && touch {c}", "../cluster", "cluster/..",
     "CLUSTER", "cluster\\", "cluster,cluster", "clüster", "cluster'", '"cluster"', "*", "x" * 4096, "-rf",
     "cluster%00"],
    ids=ident,
)
def test_hostile_machine_header(api, home, canary, template):
    response = api.request("GET", "/ls", params={"targetPath": home}, machine=canary.fill(template))
    body = refused(response, 400, "X-Machine-Does-Not-Exist")
    assert body["error"] == "Machine does not exist"
    response = api.request("POST", "/mkdir", data={"targetPath": f"{home}/new"}, machine=canary.fill(template))
    refused(response, 400, "X-Machine-Does-Not-Exist")
    assert os.listdir(cluster_path(home)) == []
    canary.assert_absent()


# --- alice and bob -----------------------------------------------------------------------------------------------

SECRET = b"bob's secret: 7f3a9c\n"


@pytest.fixture
def bobs_file(bob_api) -> Iterator[str]:
    """A file bob uploaded into his own (0700) home, removed by bob at the end."""
    directory = f"/home/bob/t-{uuid.uuid4().hex[:12]}"
    assert bob_api.post("/mkdir", targetPath=directory).status_code == 201
    assert bob_api.post("/upload", files={"file": ("secret.txt", SECRET)}, targetPath=directory).status_code == 201
    yield f"{directory}/secret.txt"
    assert (cluster_path(directory) / "secret.txt").read_bytes() == SECRET  # untouched by alice
    assert bob_api.delete("/rm", targetPath=directory).status_code == 204


BOB_READS = {
    "ls-dir": ("GET", "/ls", {"targetPath": "{dir}/"}),
    "ls-file": ("GET", "/ls", {"targetPath": "{file}"}),
    "view": ("GET", "/view", {"targetPath": "{file}"}),
    "head": ("GET", "/head", {"targetPath": "{file}"}),
    "tail": ("GET", "/tail", {"targetPath": "{file}"}),
    "grep": ("GET", "/head", {"targetPath": "{file}", "grep": "secret"}),
    "download": ("GET", "/download", {"sourcePath": "{file}"}),
    "checksum": ("GET", "/checksum", {"targetPath": "{file}"}),
    "stat": ("GET", "/stat", {"targetPath": "{file}"}),
    "copy": ("POST", "/copy", {"sourcePath": "{file}", "targetPath": "{home}/stolen"}),
    "rename": ("PUT", "/rename", {"sourcePath": "{file}", "targetPath": "{home}/stolen"}),
    "compress": ("POST", "/compress", {"sourcePath": "{dir}", "targetPath": "{home}/stolen.tgz",
                                       "dereference": "true"}),
    "chmod": ("PUT", "/chmod", {"targetPath": "{file}", "mode": "777"}),
    "rm": ("DELETE", "/rm", {"targetPath": "{file}"}),
    "upload-into": ("POST", "/upload", {"targetPath": "{dir}"}),
    "mkdir-into": ("POST", "/mkdir", {"targetPath": "{dir}/x"}),
}


@pytest.mark.parametrize("spelling", ["direct", "via-alice-dot-dot", "via-symlink"])
@pytest.mark.parametrize("operation", list(BOB_READS))
def test_alice_cannot_read_or_change_bobs_files(api, home, bobs_file, operation, spelling):
    directory = os.path.dirname(bobs_file)
    if spelling == "via-alice-dot-dot":
        directory = directory.replace("/home/bob/", "/home/alice/../bob/")
    elif spelling == "via-symlink":  # a link of alice's to bob's directory is still bob's directory
        os.symlink(directory, cluster_path(f"{home}/link"))
        os.lchown(cluster_path(f"{home}/link"), ALICE.pw_uid, ALICE.pw_gid)
        directory = f"{home}/link"
    method, route, template = BOB_READS[operation]
    values = {k: v.format(dir=directory, file=f"{directory}/secret.txt", home=home) for k, v in template.items()}
    files = {"file": ("x.txt", b"x")} if route == "/upload" else None
    response = api.request(method, route, **({"params": values} if method == "GET" else {"data": values,
                                                                                          "files": files}))
    assert response.status_code == 400, response.text
    # "ls: cannot access '<path>': Permission denied" maps to X-Invalid-Path: §3.6 tries "cannot access" first
    assert "X-Permission-Denied" in response.headers or "X-Invalid-Path" in response.headers
    if operation not in ("ls-dir", "ls-file", "chmod"):
        assert "X-Permission-Denied" in response.headers
    assert b"7f3a9c" not in response.content
    assert not os.path.exists(cluster_path(f"{home}/stolen"))
    # tar may leave the archive it opened first: it must hold nothing
    if os.path.exists(cluster_path(f"{home}/stolen.tgz")):
        with tarfile.open(cluster_path(f"{home}/stolen.tgz")) as archive:
            assert not [m for m in archive.getmembers() if m.isfile()]


# --- the audit log -------------------------------------------------------------------------------------------------

def test_audit_log_has_alice_and_the_literal_values(site, api, home, canary):
    """The login node's audit record of each command names alice and holds the hostile value as one word."""
    sent = {}
    for template in ("$(touch {c})", "x; touch {c}", "it's", "-rf", "ünï"):
        path = f"{home}/{canary.fill(template)}"
        rid = f"uh-audit-{uuid.uuid4().hex[:12]}"
        response = api.request("POST", "/mkdir", data={"targetPath": path}, headers={"X-Request-ID": rid})
        assert response.status_code == 201 and response.headers["X-Request-ID"] == rid
        sent[rid] = path
    deadline = time.monotonic() + 5
    while len(records := site.audit_records(set(sent))) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {r["request_id"] for r in records} == set(sent)
    for record in records:
        assert (record["user"], record["uid"], record["status"]) == ("alice", ALICE.pw_uid, 0)
        assert record["key_id"].startswith("alice@")
        assert record["command"].endswith(" -- " + shlex.quote(sent[record["request_id"]]))
    canary.assert_absent()
