"""The cluster's resources as `scontrol -a show -o node|partition|reservation` reports them, and hostlists.

Node names come from requests and become one operand of scontrol, so their syntax (Slurm's hostlist) is
checked here, where the command is built: a value that passes can never read as an option (it cannot begin
with `-`) and holds nothing Slurm would split into a second item.
"""

from __future__ import annotations

import re

from common import errors
from common.commands import Command, Output, classify

# One host expression of Slurm's hostlist syntax: name characters and bracketed ranges, e.g. `nid[001-004,7]-gpu`.
_RANGES = r"\[[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*\]"
HOST = re.compile(rf"(?:[A-Za-z0-9_]|{_RANGES})(?:[A-Za-z0-9_.-]|{_RANGES}){{0,254}}", re.ASCII)
TOP_LEVEL_COMMA = re.compile(r",(?![^\[]*\])")  # a comma that is not inside brackets
TOKEN = re.compile(r"(?:^|\s)([A-Za-z][\w/:.]*)=(\S*)")


def node_list(raw: str | list[str] | None, description: str = "Error on nodes operation") -> list[str]:
    """Host expressions (a comma-separated hostlist, or several), each checked; repeats dropped in order."""
    if not raw:
        return []
    parts = [raw] if isinstance(raw, str) else raw
    hosts = [host.strip() for part in parts for host in TOP_LEVEL_COMMA.split(part)]
    for host in hosts:
        if not HOST.fullmatch(host):
            raise errors.BadRequest(f"'nodes' has an invalid node name {host[:64]!r} (Slurm hostlist syntax: "
                                    "letters, digits, '_', '.', '-' and [ranges], not starting with '-')",
                                    description)
    return list(dict.fromkeys(hosts))


def scontrol_fields(line: str) -> dict[str, str]:
    """The first value of each `Key=value` token (OS= and Reason= values hold spaces; we need none of them)."""
    found: dict[str, str] = {}
    for key, value in TOKEN.findall(line):
        found.setdefault(key, value)
    return found


def _split(value: str, sep: str) -> list[str]:
    return [] if value in ("", "(null)") else value.split(sep)


def _records(text: str, first_key: str) -> list[dict[str, str]]:
    # "No nodes/partitions/reservations in the system" has no first key and gives no record.
    return [scontrol_fields(line) for line in text.splitlines() if line.startswith(f"{first_key}=")]


class Nodes(Command[list[dict]]):
    name = "scontrol"

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = node_list(names)  # checked hostlist syntax; repeats dropped (scontrol prints them twice)

    def argv(self) -> list[str]:
        # One comma-separated word ("too many arguments" otherwise), after `--`: getopt permutes, so a name
        # anywhere else could still be read as an option.
        return ["scontrol", "-a", "show", "-o", "node", *(["--", ",".join(self.names)] if self.names else [])]

    def result(self, output: Output) -> list[dict]:
        if output.status != 0 and not output.err:
            # "Node x not found" goes to stdout, after the nodes that were found.
            missing = [line for line in output.out.splitlines() if not line.startswith("NodeName=")]
            text = "\n".join(missing) or output.out
            error = classify(Output(output.status, b"", text.encode()))
            raise error.with_description(f"Error on {self.name} operation")
        return super().result(output)

    def parse(self, result: Output) -> list[dict]:
        return [{"NodeName": f.get("NodeName", ""), "ActiveFeatures": _split(f.get("ActiveFeatures", ""), ","),
                 "Partitions": _split(f.get("Partitions", ""), ","), "State": _split(f.get("State", ""), "+")}
                for f in _records(result.out, "NodeName")]


class Partitions(Command[list[dict]]):
    name = "scontrol"

    def argv(self) -> list[str]:
        return ["scontrol", "-a", "show", "-o", "partition"]

    def parse(self, result: Output) -> list[dict]:
        keys = ("PartitionName", "State", "TotalCPUs", "TotalNodes", "Default")
        return [{k: f.get(k, "") for k in keys} for f in _records(result.out, "PartitionName")]


class Reservations(Command[list[dict]]):
    name = "scontrol"

    def argv(self) -> list[str]:
        # -o prints ISO times already, as upstream's SLURM_TIME_FORMAT=standard (no env assignment is possible).
        return ["scontrol", "-a", "show", "-o", "reservation"]

    def parse(self, result: Output) -> list[dict]:
        keys = ("ReservationName", "State", "Nodes", "StartTime", "EndTime")
        return [{**{k: f.get(k, "") for k in keys}, "Features": _split(f.get("Features", ""), "&")}
                for f in _records(result.out, "ReservationName")]
