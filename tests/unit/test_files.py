"""Extract's archive kinds (common/files.py): from the client's type/extension, else the name."""

from __future__ import annotations

import pytest

from common import errors, files


@pytest.mark.parametrize(("requested", "kind"), [("tar.gz", "tar"), (".tar.gz", "tar"), ("TAR.BZ2", "tar"),
                                                 ("tar.xz", "tar"), (" .zip ", "zip"), ("tgz", "tar")])
def test_extract_extensions(requested, kind):
    assert files.extractor("archive.bin", requested) == kind


@pytest.mark.parametrize("requested", ["rar", "$(id)", "--tar.gz", "tar.gz.exe", "²"])
def test_extract_refuses_unknown_extensions(requested):
    with pytest.raises(errors.BadRequest):
        files.extractor("archive.bin", requested)
