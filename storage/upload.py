"""An upload's two ends in the staging area: what the client is told to do (status 111), and what it has sent.

The client gets two URLs into the task's area, both signed with the area's client key: an exact one for the file
itself, and a prefix one for `segments/` (a file larger than one segment). Whatever else a client stores under
the segment prefix is never taken as a piece of the file (swift.Staging.staged keeps only the shapes below).
"""

from __future__ import annotations

import itertools
import shlex
from typing import Any

from common.errors import FirecrestError
from common.params import integer

from .swift import MAX_SEGMENTS, SEGMENTS, Staging, StoredObject, segment_name

# The client's command: one PUT for a file up to one segment, else the segments and then the object itself,
# empty, saying how many segments there are (the service then writes the static large object's manifest).
# At most 1000 segments: a larger file gets larger segments (whole MiB: dd counts them).
# `sh` and `curl` only (dd for the pieces): pyfirecrest runs it with subprocess, without a shell of its own.
# $2 is the file's URL (query included); $3 and $4 the segments' URL prefix and query.
CLIENT_UPLOAD = (
    'f=$1; u=$2; s=$3; q=$4; seg=$5; size=$(($(wc -c < "$f"))) || exit 1; '
    'least=$(((size + 999) / 1000)); least=$(((least + 1048575) / 1048576 * 1048576)); '
    '[ "$least" -gt "$seg" ] && seg=$least; '
    'if [ "$size" -le "$seg" ]; then exec curl -fsS -X PUT -T "$f" "$u"; fi; '
    'mb=$((seg / 1048576)); n=$(((size + seg - 1) / seg)); i=0; '
    'while [ "$i" -lt "$n" ]; do '
    'dd if="$f" bs=1048576 skip=$((i * mb)) count="$mb" 2>/dev/null '
    '| curl -fsS -X PUT -T - "$s$(printf %08d "$i")?$q" || exit 1; i=$((i + 1)); '
    'done; '
    'exec curl -fsS -X PUT -H "X-Object-Meta-Segments: $n" -T /dev/null "$u"'
)


class TransferFailed(FirecrestError):
    """The transfer itself went wrong (not the request): the task ends with this reason."""


def offer(staging: Staging, task: str, source: str, name: str, segment: int) -> dict[str, Any]:
    """The `msg` of status 111: how to put the file into the task's area."""
    file_url = staging.temp_url(task, name, "PUT", public=True)
    segments_url, segments_query = staging.temp_url(task, SEGMENTS, "PUT", public=True, prefix=True).split("?", 1)
    command = shlex.join(["sh", "-c", CLIENT_UPLOAD, "firecrest-upload", source, file_url, segments_url,
                          segments_query, str(segment)])
    return {
        "parameters": {"method": "PUT", "url": file_url, "data": {}, "files": source, "json": {}, "headers": {},
                       "params": {}},
        "command": command,
        "large_files": {
            "segment_size": segment,
            "max_segments": MAX_SEGMENTS,
            "segment_url": f"{segments_url}{{index:08d}}?{segments_query}",
            "how": (f"A file larger than {segment} bytes: PUT its consecutive pieces of {segment} bytes (the last may "
                    "be shorter; larger pieces, in whole MiB, if that would make more than max_segments) to "
                    "segment_url with index 0, 1, ...; then PUT an empty body to the upload URL with the header "
                    "'X-Object-Meta-Segments: <number of pieces>'. The command does this by itself, and the "
                    "transfer to the cluster starts with the first piece."),
        },
    }


def arrived(staging: Staging, task: str, name: str, whole: bool) -> bool:
    """Whether there is something to pull: the file (`whole`: only that), or its first segment. A gone area
    counts too: the step that follows ends the task with the reason."""
    found = staging.staged(task, name)
    if found is None:
        return True
    file, segments = found
    return file is not None or (not whole and any(s.name == segment_name(0) for s in segments))


def pieces(staging: Staging, task: str, name: str) -> tuple[list[StoredObject], bool]:
    """The pieces uploaded so far, in order (segments 0, 1, ... without gaps), and whether that is all.

    The upload is complete once the file itself is there: the whole file (a single PUT), or an empty object
    announcing how many segments came before it; the segments then become a static large object.
    """
    found = staging.staged(task, name)
    if found is None:
        raise TransferFailed("The staging area is gone (its upload URL expired); start a new upload")
    file, segments = found
    contiguous = [s for i, s in itertools.takewhile(lambda p: p[1].name == segment_name(p[0]), enumerate(segments))]
    if file is None:
        return contiguous, False
    head = staging.head(task, name)
    if head is None:
        raise TransferFailed("The file is no longer in the staging area; start a new upload")
    if head.get("x-static-large-object", "").lower() == "true":  # manifest written by an earlier run
        return contiguous, True
    announced = head.get("x-object-meta-segments")
    if announced is None:
        if segments:
            raise TransferFailed("The upload sent segments, then the whole file without saying how many")
        return [StoredObject(name, int(head["content-length"]), head["etag"].strip('"'))], True
    if integer(announced) != len(segments) or not 0 < len(segments) <= MAX_SEGMENTS:  # user metadata: ASCII only
        raise TransferFailed(f"The upload announced {announced[:20]} segments, but {len(segments)} arrived")
    if len(contiguous) != len(segments):
        raise TransferFailed("The uploaded segments are not numbered 0, 1, 2, ... without gaps")
    staging.write_manifest(task, name, segments)
    return contiguous, True

