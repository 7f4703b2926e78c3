"""Where the schema fuzz (test_openapi_fuzz.py) may act: a scratch directory of alice's, refilled before every
example, and the rewriting of generated values that keeps every change inside it.

The fuzz runs as alice on the shared site, so whatever a generated value names could be her home or another
test's files. Values that name a place are mapped, deterministically (a CRC of the value, never Python's
salted hash), either onto an entry of the sandbox or onto a new name inside it; reads (GET) also keep the raw
value now and then, since reading anything as alice harms nothing. Hostile characters stay in the names: they
are what the fuzz is for."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_client import MACHINE

# Names the fuzz's values may become; each entry is restored (content, mode) before every example.
TEXT = "line one\nline two\nfind me here\n" * 4
SCRIPT = "#!/bin/bash\ntrue\n"
ENTRIES = ("src.txt", "dir", "arch.tar.gz", "arch.zip", "job.sh", "link")
PLACES = {"targetPath", "sourcePath", "linkPath"}  # form fields and query parameters naming a file
JOB_ID = re.compile(r"^(\d+)((?:\+\d+|_\d+|_\[\d+-\d+\])?)$")


def crc(value: Any) -> int:
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))


def leaf(value: Any) -> str:
    """One name inside the sandbox made of the value: no `/`, never `.` or `..`."""
    text = str(value).replace("/", "_")
    return text if text not in ("", ".", "..") else f"x{text}"


@dataclass
class Sandbox:
    root: Path
    owner: tuple[int, int]
    running_job: str = ""  # a job of alice's that DELETE /compute/jobs/{jobid} may cancel
    finished_job: str = ""  # a finished job of alice's whose output a stream may follow to its end
    tasks: list[str] = field(default_factory=list)  # tasks the fuzz started (their jobs are cancelled at the end)
    calls: int = 0  # values of this operation steered so far (places, fields, Idempotency-Keys)
    operation: str = ""  # the operation being fuzzed

    def refill(self) -> None:
        """Put every entry back as it was: the previous example may have moved, removed or chmod'ed it."""
        os.chmod(self.root, 0o700)
        for entry in self.root.iterdir():
            wrong_kind = entry.is_symlink() != (entry.name == "link") or (
                not entry.is_symlink() and entry.is_dir() != (entry.name == "dir"))
            if entry.name not in ENTRIES or wrong_kind:
                remove(entry)
        (self.root / "dir").mkdir(exist_ok=True)
        (self.root / "dir" / "inner.txt").write_text(TEXT)
        (self.root / "src.txt").write_text(TEXT)
        (self.root / "job.sh").write_text(SCRIPT)
        (self.root / "arch.tar.gz").write_bytes(tar_gz())
        (self.root / "arch.zip").write_bytes(zip_bytes())
        if not (self.root / "link").is_symlink():
            (self.root / "link").symlink_to("src.txt")
        for path in (self.root, *self.root.rglob("*")):
            try:
                if not path.is_symlink():
                    os.chmod(path, 0o700 if path.is_dir() else 0o600)
                os.lchown(path, *self.owner)
            except FileNotFoundError:  # a transfer job of an earlier example removed it meanwhile
                continue

    def place(self, value: Any, read_only: bool) -> str:
        """A path for a generated value: an entry of the sandbox, a new name in it (or in its `dir`), or, for a
        read, the value itself."""
        self.calls += 1  # turns with every call: the generator repeats values, the places must still vary
        pick = (crc(value) + self.calls) % 8
        if pick < 5:
            return str(self.root / ENTRIES[(crc(value) + self.calls // 8) % len(ENTRIES)])
        if pick == 5 and read_only:
            return str(value)
        if pick == 6:
            return str(self.root / "dir" / leaf(value))
        return str(self.root / leaf(value))

    def job(self, value: Any, running: bool) -> Any:
        """A job id for a generated one: the generated form (`12`, `12_3`, `12+1`) on one of the fuzz's own jobs,
        so that a cancel never reaches another test's job."""
        found = JOB_ID.match(str(value))
        if not found:
            return value
        return (self.running_job if running else self.finished_job) + found.group(2)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def tar_gz() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("packed.txt")
        info.size, info.mtime = len(TEXT), 1_700_000_000
        tar.addfile(info, io.BytesIO(TEXT.encode()))
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("zipped.txt", (2024, 1, 1, 0, 0, 0)), TEXT)
    return out.getvalue()


def sbatch(site: Any, root: Path, body: str) -> str:
    """A job of alice's in the sandbox (submitted as she would, on the login node's side)."""
    out = site.shell("alice", f"cd {root} && sbatch --parsable -o /dev/null -J fuzz-sandbox --wrap '{body}'",
                     check=True).stdout
    return out.strip().split(";")[0]


def open_sandbox(site: Any, owner: tuple[int, int]) -> Iterator[Sandbox]:
    """The sandbox with its two jobs; at the end, the fuzz's jobs cancelled and the directory removed."""
    root = Path("/home/alice") / f"fuzz-{uuid.uuid4().hex[:10]}"
    root.mkdir(mode=0o700)
    os.chown(root, *owner)
    box = Sandbox(root, owner)
    box.refill()
    box.running_job = sbatch(site, root, "sleep 600")
    box.finished_job = sbatch(site, root, "echo fuzz")
    try:
        yield box
    finally:
        site.shell("alice", f"scancel --name=fuzz-sandbox {box.running_job}")
        subprocess.run(["rm", "-rf", "--", str(root)], check=False)


# Form fields whose generated values are nearly always refused: half the time one that passes (None: left out).
PASSING = {"mode": ("700", "u+rw", "644", "go-w"), "owner": ("alice",), "group": ("alice", "users"),
           "type": ("auto", "tar.gz", "zip"), "extension": ("auto", "tar.gz", "zip"), "env": (None, '{"A": "1"}'),
           "account": (None, "users", "project-a"), "stageOutJobId": (None,), "time": (None, "00:05:00"),
           "file": (SCRIPT.encode(),), "grep": (None, "find me"), "lines": (None, 3), "bytes": (None, 40)}


def passing(name: str, value: Any, turn: int) -> tuple[bool, Any]:
    """(keep it, the value) for a form field or query parameter of PASSING, on the steering's `turn`."""
    if name not in PASSING or (crc(value) + turn) % 2:
        return True, value
    choices = PASSING[name]
    chosen = choices[(crc(value) + turn // 2) % len(choices)]
    return chosen is not None, chosen


def machine(value: Any, turn: int) -> Any:
    """X-Machine-Name: the site's first system, but on one turn in eight (the generated value: unknown names)."""
    return value if (crc(value) + turn) % 8 == 0 else MACHINE
