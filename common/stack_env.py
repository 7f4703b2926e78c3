"""Reads the `.stack/env` file that `deploy/local/up` writes (KEY=VALUE lines, no quoting)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stack_dir() -> Path:
    return Path(os.environ.get("FIRECREST_STACK_DIR", REPO / ".stack"))


def load_env(path: Path | None = None) -> dict[str, str]:
    path = path or stack_dir() / "env"
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env
