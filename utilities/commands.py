"""The utilities' own remote commands: each builds its argv (user values are operands after `--`, never options)
and parses its output. Quoting and error mapping live in common/commands.py; the file commands other services
run too (mkdir, upload, copy, compress, ...) in common/files.py."""

from __future__ import annotations

from common import errors
from common.commands import Command, Output
from common.files import Done

from . import listing

STAT_FORMAT = "%f %i %d %h %u %g %s %X %Y %Z"
STAT_FIELDS = ("mode", "ino", "dev", "nlink", "uid", "gid", "size", "atime", "mtime", "ctime")


class Ls(Command[list]):
    name = "ls"

    def __init__(self, path: str, hidden: bool = False, recursive: bool = False, numeric: bool = False,
                 follow: bool = False, unsorted: bool = False, names_only: bool = False) -> None:
        self.path, self.recursive = path, recursive
        flags = {"-A": hidden, "-R": recursive, "--numeric-uid-gid": numeric, "-L": follow, "-U": unsorted,
                 "-l": not names_only, "-1": names_only}
        self.flags = [flag for flag, on in flags.items() if on]

    def argv(self) -> list[str]:
        return ["ls", *self.flags, "--quoting-style=c", "--time-style=+%Y-%m-%dT%H:%M:%S", "--", self.path]

    def parse(self, result: Output) -> list:
        return listing.parse(result.out, self.path, self.recursive)


class Chmod(Command[str]):
    name = "chmod"

    def __init__(self, path: str, mode: str) -> None:
        self.path, self.mode = path, mode

    def argv(self) -> list[str]:
        return ["chmod", "-v", "--", self.mode, self.path]

    def parse(self, result: Output) -> str:
        return result.out.strip()

    def result(self, output: Output) -> str:
        if output.status != 0 and "invalid mode" in output.err:
            raise errors.InvalidMode(output.err).with_description(f"Error on {self.name} operation")
        return super().result(output)


class Chown(Command[str]):
    name = "chown"

    def __init__(self, path: str, owner: str, group: str) -> None:
        self.path = path
        self.spec = f"{owner}:{group}" if owner and group else owner or f":{group}"

    def argv(self) -> list[str]:
        return ["chown", "-v", "--", self.spec, self.path]

    def parse(self, result: Output) -> str:
        return result.out.strip()

    def result(self, output: Output) -> str:
        for text, kind in (("invalid user", errors.InvalidOwner), ("invalid group", errors.InvalidGroup)):
            if output.status != 0 and text in output.err:
                raise kind(output.err).with_description(f"Error on {self.name} operation")
        return super().result(output)


class FileType(Command[str]):
    name = "file"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["file", "-b", "-E", "--", self.path]  # -E: a missing file is an error, not an answer

    def parse(self, result: Output) -> str:
        return result.out.strip()


class Stat(Command[dict]):
    name = "stat"

    def __init__(self, path: str, dereference: bool) -> None:
        self.path, self.dereference = path, dereference

    def argv(self) -> list[str]:
        return ["stat", *(["--dereference"] if self.dereference else []), "-c", STAT_FORMAT, "--", self.path]

    def parse(self, result: Output) -> dict[str, int]:
        values = result.out.split()
        return {f: int(v, 16) if f == "mode" else int(v) for f, v in zip(STAT_FIELDS, values, strict=True)}


class Symlink(Done):
    name = "symlink"

    def __init__(self, target: str, link: str) -> None:
        self.target, self.link = target, link

    def argv(self) -> list[str]:
        return ["ln", "-s", "--", self.target, self.link]


class Slice(Command[str]):
    """head or tail of a file, by bytes or lines; the text is returned as it is (trailing newline kept)."""

    def __init__(self, tool: str, path: str, unit: str, count: int | None, skip: bool) -> None:
        self.name, self.path, self.unit, self.count, self.skip = tool, path, unit, count, skip  # type: ignore[misc]

    def argv(self) -> list[str]:
        if self.count is None:
            return [self.name, "--", self.path]
        sign = ("-" if self.name == "head" else "+") if self.skip else ""
        return [self.name, f"--{self.unit}={sign}{self.count}", "--", self.path]

    def parse(self, result: Output) -> str:
        return result.stdout.decode(errors="replace")


class Checksum(Command[str]):
    name = "checksum"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["sha256sum", "--", self.path]

    def parse(self, result: Output) -> str:
        return result.out.split()[0].lstrip("\\")  # sha256sum marks an escaped file name with a leading "\"


class ReadFile(Command[bytes]):
    """The whole file if it is at most `limit` bytes (one byte more is read to tell), else the size error."""

    def __init__(self, name: str, path: str, limit: int, failure: str) -> None:
        self.name, self.path, self.limit, self.failure = name, path, limit, failure  # type: ignore[misc]

    def argv(self) -> list[str]:
        return ["head", "--bytes", str(self.limit + 1), "--", self.path]

    def parse(self, result: Output) -> bytes:
        if len(result.stdout) > self.limit:
            raise errors.SizeLimit("File exceeds size limit").with_description(self.failure)
        return result.stdout
