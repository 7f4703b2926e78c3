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


def test_write_files_is_one_tar_of_the_given_files():
    import io
    import tarfile

    from common.files import WriteFiles

    write = WriteFiles("/home", {"alice/firecrest/abc/job.sh": b"#!/bin/bash\necho $(x)\n"})
    assert write.argv() == ["tar", "--extract", "--file=-", "--directory=/home", "--no-same-owner",
                            "--no-same-permissions", "--no-overwrite-dir"]
    with tarfile.open(fileobj=io.BytesIO(write.payload())) as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.isfile(), member.mode) == ("alice/firecrest/abc/job.sh", True, 0o644)
        assert archive.extractfile(member).read() == b"#!/bin/bash\necho $(x)\n"


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", ".."])
def test_write_files_takes_only_plain_relative_names(name):
    from common.files import WriteFiles

    with pytest.raises(ValueError):
        WriteFiles("/home", {name: b""})
