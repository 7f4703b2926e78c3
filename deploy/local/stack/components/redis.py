"""Redis for the task store: loopback only, a password, AOF persistence."""

from __future__ import annotations

from ..component import Component
from ..core import HOST, Daemon, mkdir, run, write
from . import PORTS


class Redis(Component):
    name = "redis"

    @property
    def password(self) -> str:
        return self.stack.secret("redis")

    def ports(self) -> list[int]:
        return [PORTS["redis"]]

    def prepare(self) -> None:
        mkdir(self.dir, 0o750, owner="redis")
        mkdir(self.dir / "data", 0o750, owner="redis")
        conf = "\n".join([
            f"bind {HOST}",
            f"port {PORTS['redis']}",
            "protected-mode yes",
            f"requirepass {self.password}",
            "daemonize no",
            f"dir {self.dir / 'data'}",
            "appendonly yes",
            "appendfsync everysec",
            "save ''",
            "loglevel notice",
            'logfile ""',
        ])
        write(self.dir / "redis.conf", conf + "\n", mode=0o600, owner="redis")

    def daemons(self) -> list[Daemon]:
        return [
            Daemon(
                "redis-server",
                ["redis-server", str(self.dir / "redis.conf")],
                self.stack.run / "redis.pid",
                ready=self._ping,
                user="redis",
            )
        ]

    def _ping(self) -> bool:
        argv = ["redis-cli", "-h", HOST, "-p", str(PORTS["redis"]), "--no-auth-warning", "-a", self.password, "ping"]
        return run(argv, check=False, timeout=5).stdout.strip() == "PONG"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": f"redis://:{self.password}@{HOST}:{PORTS['redis']}/0"}

    def describe(self) -> list[str]:
        return [f"redis {HOST}:{PORTS['redis']} (AOF, password)"]
