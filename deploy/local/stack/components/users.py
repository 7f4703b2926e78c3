"""The cluster's users and its two filesystems: /home and a scratch filesystem of its own."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from ..component import Component
from ..core import SiteError, mkdir, ok, run

USERS = ("alice", "bob")
SCRATCH = Path(os.environ.get("FIRECREST_SCRATCH_DIR", "/scratch"))
LOGIN_SHELL = "/bin/sh"  # dash
SCRATCH_SIZE = "16G"  # sparse image: only what is written takes disk space


def mount_source(path: Path) -> str | None:
    """What is mounted on `path` (the backing file for a loop device), or None."""
    for line in Path("/proc/mounts").read_text().splitlines():
        device, target = line.split()[:2]
        if target == str(path):
            if device.startswith("/dev/loop"):
                return run(["losetup", "-n", "-O", "BACK-FILE", device], check=False).stdout.strip() or device
            return device
    return None


def mounted(path: Path) -> bool:
    return mount_source(path) is not None


class Users(Component):
    name = "users"

    @property
    def image(self) -> Path:
        return self.stack.path("scratch.img")

    def prepare(self) -> None:
        for user in USERS:
            self.ensure_user(user)
        self.mount_scratch()
        os.chmod(self.image, 0o600)  # the raw filesystem holds every user's scratch files
        for user in USERS:
            mkdir(SCRATCH / user, 0o700, owner=user)

    @staticmethod
    def ensure_user(user: str) -> None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            run(["useradd", "--create-home", "--user-group", user])
        # No password, but not "locked" either: sshd with UsePAM no refuses a `!` hash even for certificates.
        # sshd runs the ForceCommand as `<login shell> -c ...`, and Debian's bash then sources ~/.bashrc, which the
        # user can write: it would run before the allow-list and outside the audit log. dash reads no startup file
        # for `-c`, so API calls run nothing of the user's but the allowed program (README, "Security model").
        run(["usermod", "-p", "*", "--shell", LOGIN_SHELL, user])
        home = Path(pwd.getpwnam(user).pw_dir)
        mkdir(home, 0o700, owner=user)

    def mount_scratch(self) -> None:
        source = mount_source(SCRATCH)
        if source == str(self.image):
            return
        if source is not None:
            # Left mounted by a site that is gone (no two sites can run: they share ports); it is ours now.
            if not ok(["umount", str(SCRATCH)]):
                raise SiteError(f"{SCRATCH} is mounted from {source} and busy; unmount it first")
            print(f"note: unmounted {source} from {SCRATCH}")
        if not self.image.exists():
            run(["truncate", "-s", SCRATCH_SIZE, str(self.image)])
            run(["mkfs.ext4", "-q", "-F", "-L", "scratch", str(self.image)])
        mkdir(SCRATCH, 0o755)
        proc = run(["mount", "-o", "loop,nosuid,nodev", str(self.image), str(SCRATCH)], check=False)
        if proc.returncode != 0:
            raise SiteError(f"cannot mount the scratch filesystem {self.image} on {SCRATCH}: {proc.stderr.strip()}")
        os.chmod(SCRATCH, 0o755)

    def describe(self) -> list[str]:
        return [f"unix users {', '.join(USERS)}: homes in /home, scratch in {SCRATCH} (ext4 image {self.image})"]

    def after_stop(self) -> None:
        if mounted(SCRATCH) and not ok(["umount", str(SCRATCH)]):
            print(f"warning: {SCRATCH} is busy and stays mounted")

    def purge(self) -> None:
        # Users and their homes are left alone: they may hold data a person wants to keep.
        # The scratch data live in the image (removed with the stack dir); the mount point is left empty.
        if SCRATCH.is_dir() and not mounted(SCRATCH) and not any(SCRATCH.iterdir()):
            SCRATCH.rmdir()

