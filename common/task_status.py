"""A task's status: the contract's codes, one enum for the task store and the services that run the work."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """The FirecREST v1 task codes. A `StrEnum`: it is the code itself on the wire, in JSON and in Redis."""

    QUEUED = "100"
    IN_PROGRESS = "101"
    # An external upload (user -> cluster) through the object store.
    UPLOAD_OFFER_PENDING = "110"
    UPLOAD_WAITING = "111"  # the client has its URLs; the object has not arrived yet
    UPLOAD_ARRIVED = "112"
    UPLOAD_PULLING = "113"
    UPLOAD_DONE = "114"
    UPLOAD_FAILED = "115"
    # An external download (cluster -> user) through the object store.
    DOWNLOAD_PUSHING = "116"
    DOWNLOAD_READY = "117"
    DOWNLOAD_FAILED = "118"
    SUCCEEDED = "200"
    DELETED = "300"
    EXPIRING = "301"
    INVALID = "302"
    FAILED = "400"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]

    @property
    def final(self) -> bool:
        return self in FINAL


# The contract's texts (typos included: clients may compare them).
DESCRIPTIONS = {
    Status.QUEUED: "Queued",
    Status.IN_PROGRESS: "In progress",
    Status.UPLOAD_OFFER_PENDING: "Waiting for Form URL from Object Storage to be retrieved",
    Status.UPLOAD_WAITING: "Form URL from Object Storage received",
    Status.UPLOAD_ARRIVED: "Object Storage confirms that upload to Object Storage has finished",
    Status.UPLOAD_PULLING: "Download from Object Storage to server has started",
    Status.UPLOAD_DONE: "Download from Object Storage to server has finished",
    Status.UPLOAD_FAILED: "Download from Object Storage error",
    Status.DOWNLOAD_PUSHING: "Started upload from filesystem to Object Storage",
    Status.DOWNLOAD_READY: "Upload from filesystem to Object Storage has finished succesfully",
    Status.DOWNLOAD_FAILED: "Upload from filesystem to Object Storage has finished with errors",
    Status.SUCCEEDED: "Finished successfully",
    Status.DELETED: "Deleted on request",
    Status.EXPIRING: "Marked for expiration in persistence",
    Status.INVALID: "Task not longer valid",
    Status.FAILED: "Finished with errors",
}
FINAL = frozenset({Status.UPLOAD_DONE, Status.UPLOAD_FAILED, Status.DOWNLOAD_READY, Status.DOWNLOAD_FAILED,
                   Status.SUCCEEDED, Status.DELETED, Status.EXPIRING, Status.INVALID, Status.FAILED})


def parse(code: object) -> Status | None:
    """The status for a code from the wire; None for anything else."""
    try:
        return Status(str(code))
    except ValueError:
        return None
