"""Slurm with accounting: munge, MariaDB, slurmdbd, slurmctld and one slurmd."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..component import Component
from ..core import REPO, Daemon, SiteError, mkdir, ok, port_open, render, run
from . import PORTS
from .users import USERS

CLUSTER = REPO / "deploy" / "cluster"
# Accounts: every user has a default account; `project-a` and `project-b` exercise the `account` parameter.
ACCOUNTS = {"users": USERS, "project-a": ("alice",), "project-b": ("bob",)}
# The lines slurmctld logs for each job it accepts (a batch job; an allocation, by salloc or srun).
# Anchored at the line's start (after its timestamp): a user's text elsewhere in a line (a job name in an error)
# cannot raise the floor.
ACCEPTED = re.compile(rb"^\[[^\]]*\] (?:sched: )?_slurm_rpc_(?:submit_batch_job|allocate_resources):? JobId=(\d{1,8}) ",
                      re.MULTILINE)
MAX_JOB_ID = 0x03FF0000  # Slurm's default MaxJobId


class Munge(Component):
    name = "munge"

    @property
    def socket(self) -> Path:
        return self.dir / "munge.socket"

    def prepare(self) -> None:
        mkdir(self.dir, 0o755, owner="munge")
        key = self.dir / "munge.key"
        if not key.exists():
            run(["mungekey", "--create", f"--keyfile={key}"])
        run(["chown", "munge:munge", str(key)])
        key.chmod(0o400)

    def daemons(self) -> list[Daemon]:
        return [
            Daemon(
                "munged",
                [
                    "runuser", "-u", "munge", "--", "munged", f"--key-file={self.dir / 'munge.key'}",
                    f"--socket={self.socket}", f"--pid-file={self.dir / 'munged.pid'}",
                    f"--log-file={self.dir / 'munged.log'}", f"--seed-file={self.dir / 'munged.seed'}",
                    "--num-threads=4",
                ],
                self.dir / "munged.pid",
                ready=lambda: ok(["sh", "-c", f"munge -n -S {self.socket} | unmunge -S {self.socket}"]),
                daemonizes=True,
            )
        ]

    def describe(self) -> list[str]:
        return [f"munged, socket {self.socket}"]


class MariaDB(Component):
    name = "mariadb"

    @property
    def cnf(self) -> Path:
        return self.dir / "my.cnf"

    def ports(self) -> list[int]:
        return [PORTS["mariadb"]]

    def prepare(self) -> None:
        mkdir(self.dir, 0o755)
        mkdir(self.dir / "log", 0o750, owner="mysql")
        mkdir(self.dir / "run", 0o750, owner="mysql")  # its socket takes any local user; slurmdbd uses TCP
        render(
            CLUSTER / "my.cnf.in",
            self.cnf,
            {
                "DATADIR": self.dir / "data",
                "SOCKET": self.dir / "run" / "mysqld.sock",
                "PIDFILE": self.dir / "run" / "mysqld.pid",
                "LOG": self.dir / "log",
                "MARIADB_PORT": PORTS["mariadb"],
            },
        )
        if not (self.dir / "data" / "mysql").exists():
            mkdir(self.dir / "data", 0o750, owner="mysql")
            run(["mariadb-install-db", f"--defaults-file={self.cnf}", "--user=mysql",
                 "--auth-root-authentication-method=socket", "--skip-test-db"])

    def daemons(self) -> list[Daemon]:
        return [
            Daemon(
                "mariadbd",
                ["mariadbd", f"--defaults-file={self.cnf}"],
                self.stack.run / "mariadbd.pid",
                ready=lambda: ok(["mariadb-admin", f"--defaults-file={self.cnf}", "ping"]),
                user="mysql",  # started as root it would bind its port only after dropping to mysql
                timeout=60,
            )
        ]

    def configure(self) -> None:
        password = self.stack.secret("slurmdb")
        sql = (
            f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';"
            f"ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        run(["mariadb", f"--defaults-file={self.cnf}", "-e", sql])

    def describe(self) -> list[str]:
        return [f"MariaDB for slurmdbd on 127.0.0.1:{PORTS['mariadb']}"]


class Slurm(Component):
    """The site's first cluster, with the accounting daemon every cluster of the site reports to."""

    name = "slurm"
    cluster = "firecrest"  # ClusterName: accounting keeps each cluster's jobs apart by it
    node = "localhost"
    default_partition = "normal"
    prefix = ""  # of the daemons' names and ports (a second cluster's are told apart by it)
    runs_dbd = True  # slurmdbd runs with this cluster and serves the site's others too

    def port(self, daemon: str) -> int:
        return PORTS[self.prefix + daemon]

    @property
    def conf(self) -> Path:
        return self.dir / "etc" / "slurm.conf"

    def ports(self) -> list[int]:
        return [PORTS["slurmdbd"]] * self.runs_dbd + [self.port("slurmctld"), self.port("slurmd")]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def prepare(self) -> None:
        run_dir = mkdir(self.dir / "run", 0o755, owner="slurm")
        log_dir = mkdir(self.dir / "log", 0o750, owner="slurm")
        mkdir(self.dir / "ctld", 0o700, owner="slurm")
        mkdir(self.dir / "d", 0o755)
        mkdir(self.conf.parent, 0o755)
        munge_socket = self.stack.path("munge", "munge.socket")
        values = {
            "CLUSTER_NAME": self.cluster,
            "NODE_NAME": self.node,
            "DEFAULT_PARTITION": self.default_partition,
            "SLURMCTLD_PORT": self.port("slurmctld"),
            "SLURMD_PORT": self.port("slurmd"),
            "SLURMDBD_PORT": PORTS["slurmdbd"],
            "MARIADB_PORT": PORTS["mariadb"],
            "MUNGE_SOCKET": munge_socket,
            "STATE": self.dir,
            "RUN": run_dir,
            "LOG": log_dir,
            "REAL_MEMORY": self.real_memory(),
            "DB_PASSWORD": self.stack.secret("slurmdb"),
            "FIRST_JOB_ID": self.first_job_id(log_dir / "slurmctld.log"),
        }
        render(CLUSTER / "slurm.conf.in", self.conf, values)
        if self.runs_dbd:
            render(CLUSTER / "slurmdbd.conf.in", self.conf.parent / "slurmdbd.conf", values, mode=0o600,
                   owner="slurm")

    @staticmethod
    def first_job_id(log: Path) -> int:
        """Past every job id slurmctld has handed out, as its log names them (it logs each job it accepts
        before it answers; other lines may name any id a client asked about). Killed, slurmctld forgets the jobs
        it accepted since its last state save and would give their ids again while they still run on the node;
        Slurm answers that by draining the node ("Duplicate jobid"), and every later job waits for an
        administrator. FirstJobId only raises the floor of the saved sequence."""
        try:
            text = log.read_bytes()
        except FileNotFoundError:
            return 1
        accepted = [int(m) for m in ACCEPTED.findall(text) if int(m) < MAX_JOB_ID]
        return max(accepted, default=0) + 1

    @staticmethod
    def real_memory() -> int:
        """About 90% of what slurmd sees, or the node drains on a mismatch."""
        out = run(["slurmd", "-C"]).stdout
        for word in out.split():
            if word.startswith("RealMemory="):
                return int(int(word.split("=")[1]) * 0.9)
        raise SiteError(f"slurmd -C gave no RealMemory: {out!r}")

    def _slurm_ok(self, argv: list[str], expect: str) -> bool:
        proc = run(argv, check=False, env=self._env(), timeout=10)
        return proc.returncode == 0 and expect in proc.stdout

    def _node_up(self) -> bool:
        proc = run(["sinfo", "-h", "-N", "-o", "%T"], check=False, env=self._env(), timeout=10)
        states = set(proc.stdout.split())
        return bool(states) and states <= {"idle", "mixed", "allocated"}

    def daemons(self) -> list[Daemon]:
        run_dir = self.dir / "run"
        dbd = Daemon(
            "slurmdbd",
            ["slurmdbd"],
            run_dir / "slurmdbd.pid",
            ready=lambda: port_open(PORTS["slurmdbd"]),
            daemonizes=True,
            user="slurm",  # as root it would bind its port only after dropping to SlurmUser
            env=self._env(),
            timeout=60,
        )
        return [dbd] * self.runs_dbd + [
            Daemon(
                self.prefix + "slurmctld",
                ["slurmctld", "-f", str(self.conf)],
                run_dir / "slurmctld.pid",
                ready=lambda: self._slurm_ok(["scontrol", "ping"], "UP"),
                daemonizes=True,
                user="slurm",  # as root it would bind its port only after dropping to SlurmUser
                env=self._env(),
            ),
            Daemon(
                self.prefix + "slurmd",
                ["slurmd", "-f", str(self.conf), "-N", self.node],
                run_dir / "slurmd.pid",
                ready=self._node_up,
                daemonizes=True,
                env=self._env(),
            ),
        ]

    def configure(self) -> None:
        """Register the cluster, and its accounts and users, once; `sacctmgr add` fails on what exists, so look
        first. Associations are per cluster: the site's accounts and users get them on each of its clusters."""
        env = self._env()

        def show(entity: str, fields: str, *where: str) -> set[str]:
            argv = ["sacctmgr", "-n", "-P", "show", entity, *where, f"format={fields}"]
            return set(run(argv, env=env).stdout.split())

        cluster = f"cluster={self.cluster}"
        if self.cluster not in show("cluster", "cluster"):
            run(["sacctmgr", "-i", "add", "cluster", self.cluster], env=env)
        assocs = show("assoc", "account,user", cluster)
        for account in ACCOUNTS:
            if f"{account}|" not in assocs:
                run(["sacctmgr", "-i", "add", "account", account, cluster], env=env)
        for account, members in ACCOUNTS.items():
            for user in members:
                if f"{account}|{user}" not in assocs:
                    run(["sacctmgr", "-i", "add", "user", user, f"account={account}", "defaultaccount=users",
                         cluster], env=env)

    def before_stop(self) -> None:
        # Cancel every job first so no slurmstepd outlives slurmd.
        if port_open(self.port("slurmctld")):
            for state in ("PENDING", "RUNNING", "SUSPENDED"):
                run(["scancel", "--quiet", f"--state={state}"], check=False, env=self._env(), timeout=10)

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def describe(self) -> list[str]:
        dbd = f", slurmdbd :{PORTS['slurmdbd']}" if self.runs_dbd else f" (accounting: slurmdbd :{PORTS['slurmdbd']})"
        return [
            f"cluster {self.cluster}: slurmctld :{self.port('slurmctld')}, slurmd :{self.port('slurmd')} "
            f"(node {self.node}){dbd}; partitions {self.default_partition} (default), xfer",
            f"SLURM_CONF={self.conf}",
        ]
