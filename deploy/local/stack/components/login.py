"""The login node: the site's user CA, a dedicated sshd that trusts only it, and the audit collector."""

from __future__ import annotations

import grp
import hashlib
import os
from pathlib import Path

from ..component import Component
from ..core import HOST, Daemon, SiteError, chown, mkdir, port_open, render, run, system_user, write
from . import PORTS
from .slurm import CLUSTER

# The only group that may connect to the audit collector's socket; the wrapper is setgid to it and drops it once
# connected, so users' own processes and jobs cannot send records. The collector runs as the account of the same
# name (that group is its primary group), which owns the socket's directory and the audit log, and nothing else.
AUDIT_GROUP = AUDIT_ACCOUNT = "firecrest-audit"
# The certificator's account: the user CA's private key is readable by it (and root) alone.
CA_ACCOUNT = "firecrest-ca"


class LoginNode(Component):
    """The login node of the site's first system; another system's is this with its own names (cluster2.py)."""

    name = "login"
    prefix = ""  # of its daemons, port, pid files, audit log and user CA: each system's login node has its own
    slurm = "slurm"  # the component whose slurm.conf the node's sessions use
    system = "site"  # what its user CA signs for (the key's comment)

    @property
    def ca_dir(self) -> Path:
        return self.stack.path("ca")

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / f"{self.prefix}user_ca"

    @property
    def port(self) -> int:
        return PORTS[f"{self.prefix}sshd"]

    @property
    def audit_socket(self) -> Path:
        return self.dir / "audit" / "audit.sock"

    @property
    def audit_log(self) -> Path:
        return self.stack.log / f"{self.prefix}audit.log"

    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> None:
        # The CA's private key is the certificator's only.
        mkdir(self.ca_dir, 0o700, owner=system_user(CA_ACCOUNT))
        ca_key = self.ca_key
        if not ca_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"firecrest {self.system} user CA", "-f",
                 str(ca_key)])
        for path in (ca_key, ca_key.with_suffix(".pub")):
            chown(path, CA_ACCOUNT)
        ca_key.chmod(0o600)
        mkdir(self.dir, 0o755)
        system_user(AUDIT_ACCOUNT, group=AUDIT_GROUP)
        mkdir(self.audit_socket.parent, 0o750, owner=AUDIT_ACCOUNT)  # the wrapper enters it by its group
        mkdir(self.stack.log)
        if not self.audit_log.exists():
            write(self.audit_log, "", mode=0o600)
        chown(self.audit_log, AUDIT_ACCOUNT)
        self.audit_log.chmod(0o600)
        host_key = self.dir / "ssh_host_ed25519_key"
        if not host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "firecrest login node", "-f", str(host_key)])
        host_key.chmod(0o600)
        trusted = self.dir / "trusted_user_ca_keys.pub"
        trusted.write_text(ca_key.with_suffix(".pub").read_text())  # this system's CA only
        trusted.chmod(0o644)
        allowed = self.dir / "allowed-commands"
        allowed.write_text((CLUSTER / "allowed-commands").read_text())
        allowed.chmod(0o644)
        wrapper = self.dir / "firecrest-shell"
        self._build_wrapper(wrapper, allowed)
        render(
            CLUSTER / "sshd_config.in",
            self.dir / "sshd_config",
            {
                "SSH_PORT": self.port,
                "SSH_DIR": self.dir,
                "PIDFILE": self.stack.run / f"{self.prefix}sshd.pid",
                "WRAPPER": wrapper,
                "SLURM_CONF": self.stack.path(self.slurm, "etc", "slurm.conf"),
            },
        )
        mkdir(Path("/run/sshd"), 0o755)  # privilege separation directory, compiled into sshd
        mkdir(self.stack.run)
        run(["/usr/sbin/sshd", "-t", "-f", str(self.dir / "sshd_config")])

    def _build_wrapper(self, wrapper: Path, allowed: Path) -> None:
        """Compile the ForceCommand wrapper with this site's paths (only when the source or paths change) and
        install it setgid to the audit group."""
        if os.statvfs(self.dir).f_flag & os.ST_NOSUID:
            raise SiteError(f"{self.dir} is on a nosuid filesystem: the login wrapper cannot reach the audit log")
        source = CLUSTER / "firecrest-shell.c"
        defines = [f'-DALLOWED_FILE="{allowed}"', f'-DAUDIT_SOCKET="{self.audit_socket}"']
        stamp = self.dir / "firecrest-shell.built"
        wanted = hashlib.sha256(source.read_bytes() + " ".join(defines).encode()).hexdigest()
        gid = grp.getgrnam(AUDIT_GROUP).gr_gid
        if wrapper.exists() and stamp.exists() and stamp.read_text() == wanted:
            st = wrapper.stat()
            if (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o2755):
                return
        tmp = wrapper.with_name("firecrest-shell.new")
        run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", *defines, "-o", str(tmp), str(source)])
        os.chown(tmp, 0, gid)
        tmp.chmod(0o2755)  # after chown, which clears the setgid bit
        tmp.replace(wrapper)
        stamp.write_text(wanted)

    def daemons(self) -> list[Daemon]:
        return [
            Daemon(
                f"{self.prefix}audit-collector",
                ["/usr/bin/python3", str(CLUSTER / "audit-collector"), str(self.audit_socket), str(self.audit_log),
                 AUDIT_GROUP, str(self.dir / "trusted_user_ca_keys.pub")],
                self.stack.run / f"{self.prefix}audit-collector.pid",
                ready=self.audit_socket.exists,
                user=AUDIT_ACCOUNT,
            ),
            Daemon(
                f"{self.prefix}sshd",
                # sshd re-execs itself, so it is started by absolute path.
                ["/usr/sbin/sshd", "-f", str(self.dir / "sshd_config"), "-E",
                 str(self.stack.log / f"{self.prefix}sshd.log")],
                self.stack.run / f"{self.prefix}sshd.pid",
                ready=lambda: port_open(self.port),
                daemonizes=True,
            ),
        ]

    def after_stop(self) -> None:
        self.audit_socket.unlink(missing_ok=True)  # so `ready` never sees a stale socket

    def env(self) -> dict[str, str]:
        return {"FIRECREST_SSH_HOST": HOST, "FIRECREST_SSH_PORT": str(PORTS["sshd"])}

    def describe(self) -> list[str]:
        return [
            f"sshd {HOST}:{self.port} (user certificates from CA {self.ca_key}.pub only)",
            f"allow-list {self.dir / 'allowed-commands'}, audit log {self.audit_log} (socket {self.audit_socket}: "
            f"root and group {AUDIT_GROUP} only; the wrapper is setgid to it)",
        ]
