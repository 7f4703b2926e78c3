"""docs/examples/utilities.sh runs as a user would run it, says what it should, and leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from cluster_paths import cluster_path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "docs/examples/utilities.sh"


def run_example(script: str = SCRIPT, **env: str) -> subprocess.CompletedProcess:
    """The script from the repository root, as its header says, with `env` added to the caller's environment."""
    return subprocess.run(["bash", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=os.environ | env)


def test_utilities_example_runs(site, tmp_path):
    result = run_example(TMPDIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line]
    [working] = [line for line in lines if line.startswith("working in ")]
    directory = working.removeprefix("working in ")
    assert re.fullmatch(r"/home/alice/utilities-example-\d+", directory)
    said = dict(line.split(": ", 1) for line in lines if ": " in line)
    assert said["mkdir"] == "Success to mkdir file."
    assert said["upload"] == "File upload successful"
    assert re.fullmatch(r"rw-r--r-- alice \d+ hello\.txt", said["ls"])
    assert said["view"] == "hello from the utilities example ... line 12 (12 lines)"
    assert re.fullmatch(r"[0-9a-f]{64} matches", said["checksum"])
    assert said["download"] == "identical"
    assert said["rm"] == "HTTP 204"
    assert said["after rm"].lower().startswith("x-invalid-path:")
    # nothing left behind: not on the cluster, not in the local temp directory
    assert not os.path.lexists(cluster_path(directory))
    assert os.listdir(tmp_path) == []


def test_utilities_example_cleans_up_when_a_step_fails(site, tmp_path):
    """A failure half way (here: the download's target cannot be written) still removes the directory."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    broken = tmp_path / "broken.sh"
    text = (REPO / SCRIPT).read_text()
    assert '"$LOCAL/back.txt"' in text
    missing = tmp_path / "missing" / "back.txt"  # a directory that does not exist, whatever the machine has
    broken.write_text(text.replace('-o "$LOCAL/back.txt"', f'-o "{missing}"', 1))
    result = run_example(str(broken), TMPDIR=str(scratch))
    assert result.returncode != 0
    [working] = [line for line in result.stdout.splitlines() if line.startswith("working in ")]
    assert "checksum" in result.stdout and "download: identical" not in result.stdout
    assert not os.path.lexists(cluster_path(working.removeprefix("working in ")))
    assert os.listdir(scratch) == []
