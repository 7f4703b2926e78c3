"""`up`, `down [--purge]` and `status` for the embedded HPC site.

Usage: python3 -m stack {up|down [--purge]|status|restart COMPONENT|DAEMON}
(run by deploy/local/{up,down,status,restart})
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import threading
import time

from .component import Component
from .components import all_components
from .core import Daemon, SiteError, Stack, mkdir, port_open, port_owner, read_pid, remove, running, start, stop, write

ENV_ORDER = [
    "KEYCLOAK_URL",
    "KEYCLOAK_REALM",
    "FIRECREST_TOKEN_URL",
    "FIRECREST_CLIENT_ID_ALICE",
    "FIRECREST_CLIENT_SECRET_ALICE",
    "FIRECREST_CLIENT_ID_BOB",
    "FIRECREST_CLIENT_SECRET_BOB",
    "FIRECREST_PORTAL_CLIENT_ID",
    "SLURM_CONF",
    "FIRECREST_SSH_HOST",
    "FIRECREST_SSH_PORT",
    "REDIS_URL",
    "SWIFT_AUTH_URL",
    "SWIFT_USER",
    "SWIFT_KEY",
]


def check_ports(components: list[Component]) -> None:
    """A component that is not running at all needs all its ports free; name who holds a taken one."""
    for comp in components:
        # Partly running (one daemon died): its live daemons hold their ports; the dead one is started again and
        # fails loudly if its own port is taken.
        if any(running(d) for d in comp.daemons()):
            continue
        for port in comp.ports():
            if port_open(port):
                raise SiteError(f"port {port} needed by {comp.name} is already taken by: {port_owner(port)}")


def reachable_by_others(stack: Stack) -> None:
    """Service users (munge, mysql, swift, the cluster users) must be able to traverse to the stack dir,
    and the gateway's services (user `firecrest`) to read the code (Python cannot import from a dir it cannot list)."""
    mkdir(stack.dir, 0o711)  # traversable, not listable: each component's directory sets who reads it
    mode = stack.repo.stat().st_mode
    if mode & 0o055 != 0o055:
        os.chmod(stack.repo, mode | 0o055)
        print(f"note: made {stack.repo} readable (go+rx) for the gateway's services")
    for parent in [stack.dir, *stack.dir.parents]:
        mode = parent.stat().st_mode
        if mode & 0o111 != 0o111:  # munged insists on all three search bits on its socket's path
            os.chmod(parent, mode | 0o111)
            print(f"note: made {parent} searchable (a+x, not readable) so service users can reach {stack.dir}")


def bring_up(comp: Component, started: list[Daemon]) -> None:
    comp.prepare()
    for d in comp.daemons():
        if start(comp.stack, d):
            started.append(d)
    comp.configure()


def up(stack: Stack) -> None:
    t0 = time.monotonic()
    components = all_components(stack)
    reachable_by_others(stack)
    check_ports(components)
    started: list[Daemon] = []
    errors: list[BaseException] = []

    def in_background(comp: Component) -> None:
        try:
            bring_up(comp, started)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=in_background, args=(c,)) for c in components if c.background]
    try:
        for t in threads:
            t.start()
        for comp in components:
            if not comp.background:
                bring_up(comp, started)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    except BaseException as e:
        for t in threads:
            t.join()
        print(f"up failed: {e}", file=sys.stderr)
        print("stopping what this run started ...", file=sys.stderr)
        for d in reversed(started):
            stop(d)
        stopped = {d.pidfile for d in started}
        for comp in components:  # only components this run started: a running one keeps its sockets
            if any(d.pidfile in stopped for d in comp.daemons()):
                comp.after_stop()
        raise SystemExit(1) from None

    env: dict[str, str] = {}
    for comp in components:
        env.update(comp.env())
    missing = [k for k in ENV_ORDER if k not in env]
    if missing:
        raise SiteError(f"components did not provide {missing}")
    lines = [f"{k}={env[k]}" for k in ENV_ORDER] + [f"{k}={v}" for k, v in env.items() if k not in ENV_ORDER]
    write(stack.path("env"), "\n".join(lines) + "\n", mode=0o600)

    print(f"site up in {time.monotonic() - t0:.1f} s ({len(started)} daemons started, "
          f"{sum(len(c.daemons()) for c in components) - len(started)} already running)")
    for comp in components:
        for line in comp.describe():
            print(f"  {comp.name:<10} {line}")
    print(f"  env        {stack.path('env')}  (source it: set -a; . {stack.path('env')}; set +a)")


def down(stack: Stack, purge: bool) -> None:
    components = all_components(stack)
    for comp in reversed(components):
        try:
            comp.before_stop()
        except SiteError as e:
            print(f"warning: {comp.name}: {e}", file=sys.stderr)
        for d in reversed(comp.daemons()):
            if stop(d):
                print(f"stopped {d.name}")
        comp.after_stop()
    if purge:
        for comp in components:
            comp.purge()
        remove(stack.dir)
        print(f"removed {stack.dir}")


def restart(stack: Stack, name: str) -> None:
    """Stop and start one component's daemons, or one daemon alone (its component's others keep running): tests
    use it to prove state survives a restart, and that a daemon killed comes back without touching the rest."""
    components = all_components(stack)
    comps = {c.name: c for c in components}
    owners = {d.name: c for c in components for d in c.daemons()}
    if name in comps:
        comp = comps[name]
        for d in reversed(comp.daemons()):
            stop(d)
        comp.after_stop()
    elif name in owners:
        comp = owners[name]
        stop(next(d for d in comp.daemons() if d.name == name))
    else:
        raise SiteError(f"no component or daemon {name!r}; components: {', '.join(comps)}; "
                        f"daemons: {', '.join(owners)}")
    bring_up(comp, [])  # starts only what is not running
    print(f"restarted {name}")


def status(stack: Stack) -> int:
    down_count = 0
    for comp in all_components(stack):
        for d in comp.daemons():
            state = "running" if running(d) else "stopped"
            down_count += state == "stopped"
            pid = read_pid(d.pidfile) if state == "running" else "-"
            print(f"{comp.name:<10} {d.name:<24} {state:<8} pid {pid}")
    return 1 if down_count else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="stack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    sub.add_parser("status")
    d = sub.add_parser("down")
    d.add_argument("--purge", action="store_true", help="also remove all state")
    r = sub.add_parser("restart")
    r.add_argument("component")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the site runs as root: it starts system daemons and creates unix users")
    stack = Stack.from_env()
    try:
        if args.cmd != "status":
            # One change of the site at a time: two restarts at once each start a daemon, and the one that loses
            # the port race leaves its pid file naming a process that exited while the other runs unrecorded.
            lock = open(f"{stack.dir}.lock", "w")  # noqa: SIM115 (held until the process exits)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if args.cmd == "up":
            up(stack)
        elif args.cmd == "down":
            down(stack, args.purge)
        elif args.cmd == "restart":
            restart(stack, args.component)
        else:
            sys.exit(status(stack))
    except (SiteError, subprocess.TimeoutExpired) as e:
        sys.exit(f"{args.cmd} failed: {e}")


if __name__ == "__main__":
    main()
