"""docs/examples/storage.sh runs as a user would run it and says what it should."""

from __future__ import annotations

import json
import re
import shutil
import time

from test_utilities_examples import run_example


def test_storage_example_runs(site):
    dest = site.path("/home/alice/storage-example")
    shutil.rmtree(dest, ignore_errors=True)
    try:
        result = run_example("docs/examples/storage.sh")
        assert result.returncode == 0, result.stderr
        said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
        assert said["upload"] == f"114 {dest}/data.bin"
        assert said["download"] == "117 identical"
        assert said["invalidated"] == "404"
        match = re.fullmatch(r"200 (\d+)", said["cp job"])
        assert match, said["cp job"]
        deadline = time.monotonic() + 60  # the copy job runs on the xfer partition
        copy, size = dest / "copy.bin", (dest / "data.bin").stat().st_size
        while not (copy.exists() and copy.stat().st_size == size) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (dest / "copy.bin").read_bytes() == (dest / "data.bin").read_bytes()
        assert json.loads(said["bad target"]) == {"description": "Failed to upload file",
                                                  "error": "'targetPath' directory not allowed"}
    finally:
        shutil.rmtree(dest, ignore_errors=True)
