"""The cluster side of external transfers: Slurm jobs on the system's xfer partition, run as the user with srun.

srun keeps the SSH channel open while the job runs, so the service learns the outcome the moment the job ends
(no polling of the queue). The temp URLs travel on the job's standard input: never in an argv (ps, the audit
log) nor in a file. Each job carries its task id in its comment (common/slurm/jobs.py: found again and cancelled
after a restart). Each script is a fixed text; user values (paths) are positional arguments, quoted like every
other word by common/commands.py. The login node runs no shell: bash runs inside the job, on the xfer node.
"""

from __future__ import annotations

import posixpath
import re

from common import errors
from common.commands import Command, Output, StatProbe, classify
from common.slurm.jobs import TRANSFER_PREFIX

JOB_TIME = "24:00:00"
MD5 = re.compile(r"[0-9a-f]{32}")

# Pull: every stdin line is the URL of the next piece of the file; each is appended to the part file while its
# md5 is taken, and the md5 is printed. The service compares them with Swift's etags.
PULL = (
    'set -o pipefail; part=$1; : > "$part" || exit 3; '
    'while IFS= read -r url; do '
    'sum=$(curl -fsS --retry 3 "$url" | tee -a -- "$part" | md5sum) || exit 4; echo "${sum%% *}"; '
    'done'
)

# Push: every stdin line is the URL of the next segment of `mb` MiB of the file (the last one may be shorter);
# mb=0: the whole file to the one URL (curl's -T would read a file named "-" as stdin: hence ./ for relative paths).
PUSH = (
    'set -o pipefail; src=$1; mb=$2; i=0; case $src in /*) ;; *) src=./$src ;; esac; '
    'if [ "$mb" = 0 ]; then IFS= read -r url && exec curl -fsS --retry 3 -X PUT -T "$src" -o /dev/null "$url"; fi; '
    'while IFS= read -r url; do '
    'dd if="$src" bs=1048576 skip=$((i * mb)) count="$mb" status=none '
    '| curl -fsS --retry 3 -X PUT -T - -o /dev/null "$url" || exit 4; i=$((i + 1)); '
    'done'
)


def part_path(target: str, task_id: str) -> str:
    """Where a pull writes until the file is verified (next to the target: the final rename is atomic)."""
    directory, name = posixpath.split(target)
    return posixpath.join(directory, f".{name}.firecrest-{task_id}.part")


class _Srun(Command[str]):
    timeout = False  # bounded by the job's own time limit

    def __init__(self, partition: str, task_id: str, kind: str, script: str, args: list[str]) -> None:
        self.partition, self.task_id, self.kind, self.script, self.args = partition, task_id, kind, script, args

    def argv(self) -> list[str]:
        return ["srun", f"--partition={self.partition}", "--ntasks=1", f"--job-name=firecrest-{self.kind}",
                f"--time={JOB_TIME}", f"--comment={TRANSFER_PREFIX}{self.task_id}", "--quiet", "--",
                "bash", "-c", self.script, f"firecrest-{self.kind}", *self.args]

    def result(self, output: Output) -> str:
        if output.status != 0:
            reason = output.err or output.out.strip() or f"exit status {output.status}"
            raise errors.RemoteError(f"The transfer job failed: {reason[-500:]}")
        return output.out


class Pull(_Srun):
    """Pulls the staged pieces into the part file; returns their md5s in order."""

    name = "download from object storage"

    def __init__(self, partition: str, task_id: str, part: str) -> None:
        super().__init__(partition, task_id, "upload", PULL, [part])


class Push(_Srun):
    name = "upload to object storage"

    def __init__(self, partition: str, task_id: str, source: str, segment_mb: int) -> None:
        super().__init__(partition, task_id, "download", PUSH, [source, str(segment_mb)])


def md5s(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if MD5.fullmatch(line.strip())]


class FileSize(StatProbe[int]):
    """Size of a readable regular file (the source of a download); errors map like the utilities' ones."""

    format = "%s %F"

    def parse(self, result: Output) -> int:
        size, _, kind = result.out.strip().partition(" ")
        if kind == "directory":
            raise errors.ADirectory(f"{self.path} is a directory")
        if kind not in ("regular file", "regular empty file"):
            raise errors.InvalidPath(f"{self.path} is not a regular file")
        return int(size)


class Access(Command[bool]):
    """Whether the user may read (`-r`) or write (`-w`) a path: test's two-word form reads any path literally."""

    name = "test"

    def __init__(self, path: str, mode: str) -> None:
        self.path, self.mode = path, mode

    def argv(self) -> list[str]:
        return ["test", self.mode, self.path]

    def result(self, output: Output) -> bool:
        if output.status in (0, 1):  # test's answer: yes or no
            return output.status == 0
        raise classify(output).with_description(f"Error on {self.name} operation")
