"""The portal's job and transfer pages: the values they accept before anything reaches the API, and the shapes
they give the pages' scripts (pure functions: no site)."""

from __future__ import annotations

import json

import pytest

from portal import job_ops, relay, tasks_follow, transfer_ops
from portal.api import ApiError


@pytest.mark.parametrize("value", ["42", "42_3", "42+1"])
def test_job_ids_as_slurm_writes_them(value: str) -> None:
    assert job_ops.job_id(value) == value


@pytest.mark.parametrize("value", ["", "42_[1-3]", "../1", "1;id", "1 2", "-1", "1" * 30, "42\n"])
def test_anything_else_is_no_job_id(value: str) -> None:
    with pytest.raises(ApiError) as e:
        job_ops.job_id(value)
    assert e.value.status == 400


@pytest.mark.parametrize("value", [None, "", "../etc", "a b", "-x", "x" * 65, "a/b"])
def test_systems_are_names(value: str | None) -> None:
    with pytest.raises(ApiError):
        job_ops.system(value)


@pytest.mark.parametrize(("value", "name"), [(None, "job.sh"), ("  ", "job.sh"), ("run-1.sh", "run-1.sh")])
def test_script_names(value: str | None, name: str) -> None:
    assert job_ops.script_name(value) == name


@pytest.mark.parametrize("value", ["../x", "a b", ".hidden", "x;y", "é.sh"])
def test_script_names_refused(value: str) -> None:
    with pytest.raises(ApiError):
        job_ops.script_name(value)


@pytest.mark.parametrize(("value", "name"), [("data.bin", "data.bin"), ("C:\\Users\\al\\data.bin", "data.bin"),
                                             ("/tmp/x/y.txt", "y.txt")])
def test_only_the_files_last_component_is_its_name(value: str, name: str) -> None:
    assert transfer_ops.file_name(value) == name


@pytest.mark.parametrize("value", [None, "", ".", "..", "a/..", "x\x00y", "x\ny", "n" * 256])
def test_file_names_refused(value: str | None) -> None:
    with pytest.raises(ApiError):
        transfer_ops.file_name(value)


@pytest.mark.parametrize("value", [None, "", "home/alice", "/a\nb", "/a\x00b", "/" + "a" * 5000])
def test_paths_must_be_absolute_and_single_line(value: str | None) -> None:
    with pytest.raises(ApiError):
        transfer_ops.path(value, "the file")


@pytest.mark.parametrize("value", ["", "a-b", "x" * 65, "../t", "t t"])
def test_task_ids(value: str) -> None:
    with pytest.raises(ApiError):
        tasks_follow.task_id(value)


def test_sessions_remember_twenty_transfers_newest_first() -> None:
    known: list[str] = []
    for i in range(25):
        known = transfer_ops.remember(known, f"t{i}")
    assert known[0] == "t24" and len(known) == transfer_ops.LISTED
    assert transfer_ops.remember(known, "t20")[:2] == ["t20", "t24"]


def test_a_download_shows_its_url_only_once_ready() -> None:
    ready = transfer_ops.shaped({"task_id": "a1", "status": "117", "description": "done",
                                 "data": {"url": "http://s/x", "source": "/home/alice/x"}})
    assert ready["kind"] == "download" and ready["url"] == "http://s/x" and ready["error"] == ""
    failed = transfer_ops.shaped({"task_id": "a2", "status": "115", "data": {"msg": "checksum mismatch",
                                                                             "target": "/home/alice/y"}})
    assert failed["kind"] == "upload" and failed["url"] is None and failed["error"] == "checksum mismatch"


def test_a_failed_task_says_why_in_the_apis_words() -> None:
    e = tasks_follow.failed({"status": "400", "data": "sbatch: error: invalid partition"}, "sbatch refused")
    assert e.status == 400 and e.description == "sbatch refused: sbatch: error: invalid partition"


def test_a_refused_stream_is_one_event_the_page_reads() -> None:
    raw = relay.api_error_event(ApiError(429, "8 event streams of yours are open", "12")).decode()
    name, data = raw.strip().split("\n")
    assert name == "event: apierror"
    assert json.loads(data.removeprefix("data: ")) == {"status": 429, "description": "8 event streams of yours "
                                                       "are open", "retry_after": "12"}


def test_event_data_is_one_line_whatever_the_text() -> None:
    raw = relay.event("x", {"description": "line\nnext\r\ndata: forged"}).decode()
    assert raw.count("\n") == 3 and raw.endswith("\n\n")
