"""Following one of the user's tasks until it reaches a status the caller waits for (GET /tasks/{id})."""

from __future__ import annotations

import re
import time
from typing import Any

from .api import Api, ApiError

TASK_ID = re.compile(r"[A-Za-z0-9]{1,64}")
WAIT_S = 30.0  # a task that has not got there by then is shown as it is; the page follows it from there
FIRST_PAUSE_S, MAX_PAUSE_S = 0.1, 1.0


def task_id(value: str) -> str:
    """A task id as the API writes them; anything else never reaches a URL."""
    if not TASK_ID.fullmatch(value):
        raise ApiError(400, "not a task id")
    return value


def created(answer: dict[str, Any]) -> str:
    """The task id of an answer that started a task."""
    value = answer.get("task_id")
    if not isinstance(value, str):
        raise ApiError(502, "the API started no task")
    return task_id(value)


def get(client: Api, tid: str) -> dict[str, Any]:
    task = client.get(f"/tasks/{task_id(tid)}").json().get("task")
    if not isinstance(task, dict):
        raise ApiError(502, "the API answered without the task")
    return task


def until(client: Api, tid: str, statuses: set[str], wait_s: float = WAIT_S) -> dict[str, Any]:
    """The task once its status is one of `statuses` (or anything from 200 up: an end), or as it is after
    `wait_s` seconds. The pauses grow, so a quick task is seen quickly and a slow one costs few calls."""
    deadline, pause = time.monotonic() + wait_s, FIRST_PAUSE_S
    while True:
        task = get(client, tid)
        status = str(task.get("status", ""))
        if status in statuses or status >= "200" or time.monotonic() >= deadline:
            return task
        time.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)


def failed(task: dict[str, Any], what: str) -> ApiError:
    """A task that ended in failure, as an error with the API's own words (sbatch's message, scancel's...)."""
    data = task.get("data")
    text = data if isinstance(data, str) and data else task.get("description") or "failed"
    return ApiError(400, f"{what}: {text}")
