"""The fault tests' load: started once for the module, kept running through every kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.mixed_load import MixedLoad


@pytest.fixture(scope="module")
def load(site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MixedLoad]:
    if site.compose:
        pytest.skip("the fault tests kill the native site's daemons")
    mixed = MixedLoad(site.env, Path(tmp_path_factory.mktemp("load")))
    mixed.start()
    yield mixed
    mixed.stop()
    mixed.cleanup()
