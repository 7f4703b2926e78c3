"""The shape every part of the embedded site has."""

from __future__ import annotations

from pathlib import Path

from .core import Daemon, Stack


class Component:
    """A part of the site: its ports, its daemons in start order, and what it adds to `.stack/env`."""

    name = ""
    # Components that take long to become ready start in a thread beside the others.
    background = False

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @property
    def dir(self) -> Path:
        """The component's own state directory inside the stack dir."""
        return self.stack.path(self.name)

    def ports(self) -> list[int]:
        return []

    def prepare(self) -> None:
        """Write configuration and initialise state; must be idempotent and fast when done."""

    def daemons(self) -> list[Daemon]:
        return []

    def configure(self) -> None:
        """Runs after the daemons are ready (accounts, realms); must be idempotent."""

    def env(self) -> dict[str, str]:
        return {}

    def describe(self) -> list[str]:
        return []

    def before_stop(self) -> None:
        """Runs while the daemons are still up, before they are stopped."""

    def after_stop(self) -> None:
        """Undo what `prepare` did outside the stack dir that must not outlive `down` (mounts)."""

    def purge(self) -> None:
        """Remove state that lives outside the stack dir (the stack dir itself is removed by `down --purge`)."""
