"""What a batch script's directives say, read as sbatch reads them: the lines that start with a batch magic word,
from the second line up to the first command. Compute reads two things from them: the dependency a script asks
for (dependency.py) and whether it names its own output files (then only Slurm knows where they go)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

HEADER_BYTES = 64 * 1024  # directives sit at the top of a script; what lies beyond is overridden anyway
MAGIC = ("#SBATCH", "#PBS", "#BSUB")
# Options that change where the output goes (or that it is several files): getopt takes any unambiguous prefix of
# a long option (3 characters make each of these unambiguous for sbatch 22.05) and a short option's value may be
# glued to it (`-oout.txt`).
OUTPUT_LONG = ("--output", "--error", "--array", "--hetjob")
OUTPUT_SHORT = ("-o", "-e", "-a")


def words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unclosed quote: sbatch would refuse the line; look at it word by word
        return text.split()


def directives(script: bytes) -> Iterator[tuple[str, str]]:
    """(magic word, the rest of the line) of each directive line; sbatch reads the options right after the magic
    word, whitespace or not."""
    for raw in script[:HEADER_BYTES].decode(errors="replace").splitlines()[1:]:
        line = raw.strip()
        if line and not line.startswith("#"):
            return  # sbatch stops reading directives at the first command
        magic = next((m for m in MAGIC if line.startswith(m)), "")
        if magic:
            yield magic, line[len(magic):]


def default_output(script: bytes) -> bool:
    """True when Slurm will write the job's output and errors to `slurm-<id>.out` in its working directory: the
    script names no output, error or array option (and uses no other batch system's directives, which sbatch may
    translate). When in doubt, False: the caller then asks Slurm."""
    for magic, rest in directives(script):
        if magic != "#SBATCH":
            return False
        for word in words(rest):
            name = word.partition("=")[0]
            if word.startswith(OUTPUT_SHORT) or (len(name) >= 4 and any(o.startswith(name) for o in OUTPUT_LONG)):
                return False
    return b"\n#SBATCH hetjob" not in script and b"\n#SBATCH packjob" not in script
