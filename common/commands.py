"""Remote commands as small objects: build the argv, quote every word, parse the result or raise a typed error.

This is the only place where a command line for the cluster is written. Each word goes through `shlex.quote`,
which is also exactly the grammar the login node's wrapper (deploy/cluster/firecrest-shell) accepts, so no
shell ever interprets a user's value.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from . import errors

T = TypeVar("T")
WRAPPER_REFUSED = "firecrest-shell: refused"
AUDIT_UNAVAILABLE = "the audit log is unavailable"  # deploy/cluster/firecrest-shell.c, when its collector is down


@dataclass(frozen=True)
class Output:
    status: int
    stdout: bytes
    stderr: bytes

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace").strip()

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")


class Command(Generic[T]):
    """A remote command. Subclasses set `name`, build `argv()` and `parse()` a successful result."""

    name: ClassVar[str] = "command"
    timeout: ClassVar[bool] = True  # run under the remote `timeout` of the site limits

    def argv(self) -> list[str]:
        raise NotImplementedError

    def parse(self, result: Output) -> T:
        raise NotImplementedError

    def line(self, timeout_s: int | None, request_id: str | None) -> str:
        words = self.argv()
        if self.timeout and timeout_s:
            # SIGTERM at the limit, SIGKILL 2 s later: a timed-out command never stays behind on the cluster.
            words = ["timeout", "-k", "2", str(timeout_s), *words]
        if request_id and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", request_id):
            words = [f"ID={request_id}", *words]
        return " ".join(shlex.quote(w) for w in words)

    def result(self, output: Output) -> T:
        if output.status != 0:
            raise classify(output).with_description(f"Error on {self.name} operation")
        return self.parse(output)


def classify(output: Output) -> errors.FirecrestError:
    """Map a failed command to the contract's error (FirecREST v1 §3.6, first match wins)."""
    msg = output.err or output.out.strip()
    if output.status == 124:
        return errors.Timeout()
    if output.status == 126 and f"{WRAPPER_REFUSED}: {AUDIT_UNAVAILABLE}" in msg:
        # Nothing ran: the login node runs nothing it cannot record. A server-side condition, not the user's.
        return errors.MachineNotAvailable("the login node cannot record commands now (its audit log is down)")
    if output.status == 126 and WRAPPER_REFUSED in msg:
        return errors.CommandNotAllowed()
    rules: list[tuple[bool, type[errors.FirecrestError]]] = [
        ("cannot access" in msg, errors.InvalidPath),
        ("No such file" in msg and "cannot stat" in msg, errors.NotFound),
        ("No such file" in msg, errors.InvalidPath),
        ("cannot open" in msg or "Permission denied" in msg, errors.PermissionDenied),
        ("File exists" in msg, errors.Exists),
        ("Not a directory" in msg, errors.NotADirectory),
        ("directory" in msg, errors.ADirectory),
        ("overwrite" in msg, errors.Exists),
        ("not permitted" in msg or "read permission" in msg, errors.PermissionDenied),
    ]
    for matched, kind in rules:
        if matched:
            return kind(msg)
    return errors.RemoteError(msg or f"exit status {output.status}")


class Whoami(Command[str]):
    name = "whoami"

    def argv(self) -> list[str]:
        return ["id", "-un"]

    def parse(self, result: Output) -> str:
        return result.out.strip()


ID_ENTRY = re.compile(r"(\d+)\(([^)]*)\)")


class Groups(Command[dict]):
    """`id`: the user, the primary group and every group, with ids as strings (as the contract has them)."""

    name = "whoami"

    def argv(self) -> list[str]:
        return ["id"]

    def parse(self, result: Output) -> dict:
        fields = dict(part.split("=", 1) for part in result.out.split() if "=" in part)

        def entries(text: str) -> list[dict[str, str]]:
            return [{"name": name, "id": num} for num, name in ID_ENTRY.findall(text)]

        user, group = entries(fields["uid"])[0], entries(fields["gid"])[0]
        return {"user": user, "group": group, "groups": entries(fields.get("groups", ""))}


class SlurmPing(Command[bool]):
    name = "scontrol ping"

    def argv(self) -> list[str]:
        return ["scontrol", "ping"]

    def parse(self, result: Output) -> bool:
        return "UP" in result.out


class StatProbe(Command[T]):
    """The one `stat -c ...%F` probe of a path (what it is, in stat's words: "regular file", "directory", ...);
    each subclass says whether links are followed, what else is asked and what it makes of the answer."""

    name = "stat"
    dereference: ClassVar[bool] = True
    format: ClassVar[str] = "%F"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["stat", *(["--dereference"] if self.dereference else []), "-c", self.format, "--", self.path]


class PathExists(StatProbe[bool]):
    """A cheap probe of a filesystem path (status service): the path itself, a dangling link counts."""

    dereference = False

    def parse(self, result: Output) -> bool:
        return bool(result.out.strip())


class FileKind(StatProbe[str]):
    """What a path is, links followed."""

    def parse(self, result: Output) -> str:
        return result.out.strip()
