"""Filesystem commands that several services run: utilities at once (synchronous calls), storage as jobs on the
xfer partition (internal transfers), compute to store an uploaded job script. One argv for all: user values are
operands after `--` (or made unreadable as options), quoted by common/commands.py like every other word."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from dataclasses import dataclass

from . import errors
from .commands import Command, Output


def operand(path: str) -> str:
    """A path that no tool can read as an option (`-x` -> `./-x`), for tools that have no `--`."""
    return f"./{path}" if path.startswith("-") else path


class Done(Command[str]):
    """A command whose success has no output worth returning (the contract's `"output": ""`)."""

    def parse(self, result: Output) -> str:
        return ""


class Rename(Done):
    name = "rename"

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target

    def argv(self) -> list[str]:
        return ["mv", "--force", "--", self.source, self.target]


class Copy(Done):
    name = "copy"

    def __init__(self, source: str, target: str) -> None:
        self.source, self.target = source, target

    def argv(self) -> list[str]:
        return ["cp", "--force", "-dR", "--preserve=all", "--", self.source, self.target]


class Remove(Done):
    name = "rm"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["rm", "-r", "--interactive=never", "--", self.path]


class Mkdir(Done):
    name = "mkdir"

    def __init__(self, path: str, parents: bool) -> None:
        self.path, self.parents = path, parents

    def argv(self) -> list[str]:
        return ["mkdir", *(["-p"] if self.parents else []), "--", self.path]


class Upload(Done):
    """Writes its standard input (the caller passes the content) to `directory/filename`."""

    name = "upload"

    def __init__(self, directory: str, filename: str) -> None:
        self.path = posixpath.join(directory, filename)

    def argv(self) -> list[str]:
        # dd writes stdin to the file without a shell redirection (the login node runs no shell).
        return ["dd", f"of={self.path}", "bs=1M", "status=none"]


class WriteFiles(Done):
    """Writes files, making the directories they need (and `dirs`, empty), from a tar stream on stdin: one command
    where `mkdir -p` and `dd` were two. Member names are paths under `base`, built by the caller from checked
    parts; only the contents are the user's. As the user, tar keeps no owner, applies the umask, and leaves
    existing directories alone."""

    name = "upload"

    def __init__(self, base: str, files: dict[str, bytes], dirs: list[str] | None = None) -> None:
        self.base, self.files, self.dirs = base, files, dirs or []
        for name in [*files, *self.dirs]:
            if name.startswith("/") or posixpath.normpath(name) != name or name.split("/")[0] == "..":
                raise ValueError(f"not a relative path under the base: {name!r}")

    def payload(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name in self.dirs:
                member = tarfile.TarInfo(name)
                member.type, member.mode, member.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                archive.addfile(member)
            for name, content in self.files.items():
                member = tarfile.TarInfo(name)
                member.size, member.mode, member.mtime = len(content), 0o644, int(time.time())
                archive.addfile(member, io.BytesIO(content))
        return buffer.getvalue()

    def argv(self) -> list[str]:
        return ["tar", "--extract", "--file=-", f"--directory={self.base}", "--no-same-owner",
                "--no-same-permissions", "--no-overwrite-dir"]


# Larger uploads open their target first: a command that fails while megabytes are still being sent to it closes
# its channel under the sender, and data that crosses that close makes sshd drop the whole pooled connection.
PROBE_ABOVE = 64 * 1024


class Writable(Done):
    """Opens `path` for writing as the upload will (creating it empty if missing), and writes nothing."""

    name = "upload"

    def __init__(self, path: str) -> None:
        self.path = path

    def argv(self) -> list[str]:
        return ["dd", f"of={self.path}", "count=0", "conv=notrunc", "status=none"]


class Compress(Done):
    name = "compress"

    def __init__(self, source: str, target: str, dereference: bool) -> None:
        self.source, self.target, self.dereference = source.rstrip("/") or "/", target, dereference

    def argv(self) -> list[str]:
        directory, base = posixpath.split(self.source)
        # --force-local: an archive named like `host:file` is a file, not a remote tape; --no-unquote: a member
        # name is taken literally (GNU tar would read `a\\b` as an escape).
        return ["tar", "--force-local", "--no-unquote", "-czf", operand(self.target),
                *(["--dereference"] if self.dereference else []), "-C", operand(directory or "."), "--", base or "."]


@dataclass(frozen=True)
class CompressPlan:
    """A compress that writes aside: tar leaves a truncated archive behind when it fails, so it writes `partial`
    (next to the target: the rename is atomic) and `steps` run in order, each only if the previous succeeded:
    the tar, then the rename onto the target. If the tar fails, the partial is removed: `cleanup` as a command of
    its own (utilities, on the login node), `job_cleanup` inside a batch job (storage's internal transfers: `-f`,
    a tar that never started leaves nothing to remove and the job's log no error about it)."""

    partial: str
    steps: tuple[Compress, Rename]
    cleanup: Remove
    job_cleanup: tuple[str, ...]


def compress_plan(source: str, target: str, dereference: bool, tag: str) -> CompressPlan:
    """The one definition of a write-aside compress; `tag` (a request or task id, its first 16 characters kept)
    names the partial file."""
    partial = posixpath.join(posixpath.dirname(target), f".firecrest-{tag[:16]}.partial")
    return CompressPlan(partial, (Compress(source, partial, dereference), Rename(partial, target)), Remove(partial),
                        ("rm", "-f", "--", partial))


# Compound names too: pyfirecrest and upstream's tests send `extension=tar.gz` (with or without the dot).
EXTRACTORS = {".zip": "zip", ".tar": "tar", ".gz": "tar", ".tgz": "tar", ".bz2": "tar", ".tbz2": "tar", ".xz": "tar",
              ".txz": "tar", ".tar.gz": "tar", ".tar.bz2": "tar", ".tar.xz": "tar"}


class Extract(Done):
    name = "extract"

    def __init__(self, source: str, target: str, kind: str) -> None:
        self.source, self.target, self.kind = source, target, kind

    def argv(self) -> list[str]:
        if self.kind == "zip":
            return ["unzip", "-o", "-q", operand(self.source), "-d", operand(self.target)]
        # GNU tar recognises gzip, bzip2 and xz compression by itself when reading.
        return ["tar", "--force-local", "-xf", operand(self.source), "-C", operand(self.target)]


def extractor(source: str, requested: str) -> str:
    """`zip` or `tar`, from the client's type/extension if given (upstream ignored it), else the file name."""
    wanted = (requested or "auto").strip().lower()
    if wanted != "auto":
        wanted = wanted if wanted.startswith(".") else f".{wanted}"
        if wanted not in EXTRACTORS:
            raise errors.BadRequest(f"Unsupported file format {requested!r}", "Error on extract operation")
        return EXTRACTORS[wanted]
    for suffix, kind in EXTRACTORS.items():
        if source.lower().endswith(suffix):
            return kind
    raise errors.BadRequest(f"Unsupported file format in {source}.", "Error on extract operation")
