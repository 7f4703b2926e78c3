"""What the transfers page does with the API: start an upload and hand the browser its temp URL, start a download,
list the user's transfers, invalidate one. The bytes never pass through the portal: the browser PUTs them to Swift
and GETs them from Swift itself."""

from __future__ import annotations

import posixpath
from typing import Any

from . import tasks_follow
from .api import Api, ApiError

OFFER = "111"  # the upload's URLs are ready: the client acts now
UPLOAD_FINAL, DOWNLOAD_FINAL = {"114", "115"}, {"117", "118"}
MAX_PATH = 4096
LISTED = 20  # the newest transfers the page shows


def path(value: str | None, what: str) -> str:
    """An absolute path on the system (the API checks the rest, as the user, over SSH)."""
    p = (value or "").strip()
    if not p.startswith("/") or len(p) > MAX_PATH or "\x00" in p or "\n" in p:
        raise ApiError(400, f"{what} must be an absolute path on the system")
    return p


def file_name(value: str | None) -> str:
    """The browser's file name: only its last component is ever used (as the API does with sourcePath)."""
    name = posixpath.basename((value or "").replace("\\", "/").strip())
    if name in ("", ".", "..") or len(name) > 255 or any(c in name for c in "\x00\n\r"):
        raise ApiError(400, "the file needs a name")
    return name


def failure(data: Any, fallback: str) -> str:
    if isinstance(data, dict):
        for key in ("msg", "error"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
    return data if isinstance(data, str) and data else fallback


def upload(client: Api, machine: str, target: str, name: str) -> dict[str, Any]:
    """Start an upload (POST /storage/xfer-external/upload) and wait for its temp URL (status 111)."""
    answer = client.post("/storage/xfer-external/upload", data={"targetPath": target, "sourcePath": name},
                         machine=machine).json()
    tid = tasks_follow.created(answer)
    task = tasks_follow.until(client, tid, {OFFER} | UPLOAD_FINAL)
    status, data = str(task.get("status")), task.get("data")
    if status != OFFER or not isinstance(data, dict) or not isinstance(data.get("msg"), dict):
        raise ApiError(400, f"the upload could not start: {failure(data, str(task.get('description', status)))}")
    msg = data["msg"]
    large = msg.get("large_files") or {}
    return {"task_id": tid, "status": status, "target": data.get("target", target),
            "url": msg["parameters"]["url"], "method": msg["parameters"].get("method", "PUT"),
            "segment_url": large.get("segment_url"), "segment_size": large.get("segment_size"),
            "max_segments": large.get("max_segments")}


def download(client: Api, machine: str, source: str) -> dict[str, Any]:
    """Start a download (POST /storage/xfer-external/download): the page follows the task to its URL."""
    answer = client.post("/storage/xfer-external/download", data={"sourcePath": source}, machine=machine).json()
    return {"task_id": tasks_follow.created(answer), "source": source}


def shaped(task: dict[str, Any]) -> dict[str, Any]:
    """A storage task as the page shows it: what, where, how far, and the download URL once there."""
    raw = task.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    status = str(task.get("status", ""))
    return {"task_id": task.get("task_id") or task.get("hash_id"), "status": status,
            "description": task.get("description", ""), "system": task.get("system", ""),
            "kind": "download" if status in DOWNLOAD_FINAL | {"116"} or "url" in data else "upload",
            "source": data.get("source", ""), "target": data.get("target", ""),
            "url": data.get("url") if status == "117" else None,
            "error": failure(data, "") if status in {"115", "118", "400"} else ""}


def remember(known: list[str], tid: str) -> list[str]:
    """The transfers this session started, newest first (all of a user's tasks can be thousands: not listed)."""
    return [tid, *(t for t in known if t != tid)][:LISTED]


def recent(client: Api, known: list[str]) -> list[dict[str, Any]]:
    """The transfers this session started, as they are now (GET /tasks?tasks=...: the caller's only; an
    invalidated or expired one is left out)."""
    ids = [tasks_follow.task_id(t) for t in known]
    if not ids:
        return []
    tasks = client.get("/tasks", params={"tasks": ",".join(ids)}).json().get("tasks") or {}
    return [shaped(tasks[t]) for t in ids if isinstance(tasks.get(t), dict)]


def task(client: Api, tid: str) -> dict[str, Any]:
    return shaped(tasks_follow.get(client, tid))


def invalidate(client: Api, tid: str) -> dict[str, Any]:
    """POST /storage/xfer-external/invalidate names the task in the header X-Task-Id."""
    client.post("/storage/xfer-external/invalidate", headers={"X-Task-Id": tasks_follow.task_id(tid)})
    return {"task_id": tid, "invalidated": True}
