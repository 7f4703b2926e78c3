"""Run an unmodified Swift server script with swift.conf taken from the stack dir.

Swift 2.30 reads the hash, storage policies and [swift-constraints] only from the hard-coded
/etc/swift/swift.conf (swift_dir moves only the rings), so point the module globals at our file and
reload them before any server module imports constraint values.

It also carries two middlewares (this file is the one copied into the stack dir that the swift user can read): the
proxy's `transfer_names` (proxy-server.conf names it as `firecrest_launch:transfer_names`) and the storage servers'
`garbage_sweep` (server.conf).

Usage: launch.py SWIFT_CONF SERVER_SCRIPT SERVER_CONF [server options]
"""

import gc
import os
import re
import runpy
import sys

# The names the storage service gives objects in a transfer area (container `transfer-<task id>`): the file's own
# name (one path component) or a segment.
AREA = re.compile(r"transfer-[A-Za-z0-9]{1,64}")
SHAPED = re.compile(r"segments/[0-9]{8}|[^/]+")
WRITES = ("PUT", "POST", "COPY")


class TransferNames:
    """Refuses a temp-URL write of an object whose name no transfer area holds (`segments/../../x`, `a/b`, `..`):
    the upload's segment URL is a prefix URL, so Swift itself would store any name under it. The storage service
    treats listed names as untrusted anyway; this keeps them out in the first place."""

    def __init__(self, app, conf):
        self.app = app

    def __call__(self, env, start_response):
        if env.get("REQUEST_METHOD") in WRITES and "temp_url_sig=" in env.get("QUERY_STRING", ""):
            parts = env.get("PATH_INFO", "").split("/", 4)  # "", version, account, container, object
            if len(parts) == 5 and AREA.fullmatch(parts[3]) and (
                    parts[4] in (".", "..") or not SHAPED.fullmatch(parts[4])):
                body = b"Invalid object name for a transfer\n"
                start_response("400 Bad Request", [("Content-Type", "text/plain"),
                                                   ("Content-Length", str(len(body)))])
                return [body]
        return self.app(env, start_response)


def transfer_names(global_conf, **local_conf):
    return lambda app: TransferNames(app, {**global_conf, **local_conf})


# Every 5 s while requests end: a request's database file is closed within seconds of its end. A full collection
# costs a worker about 25 ms of CPU (measured: sweeping every 5 s at rest, 30 ticks of 10 ms a minute per worker).
SWEEP_S = 5.0


class GarbageSweep:
    """Runs the cyclic garbage collector every SWEEP_S in each worker, when requests ended since the last run (at rest
    a worker costs nothing). Python 3.11's sqlite3.Connection is in a reference cycle with its own statement cache
    (cpython#97641), so the connection the account and container servers open for each request keeps its database
    file open until a full collection, which a worker at rest never runs (the soak saw swift-account grow from 76 to
    124 descriptors, a dozen of them on the one account database). The sweeper starts at a worker's first request:
    the servers fork their workers after loading the pipeline."""

    def __init__(self, app):
        self.app = app
        self.pid = 0
        self.ended = 0  # requests whose handler returned

    def __call__(self, env, start_response):
        if self.pid != os.getpid():
            import eventlet  # Swift's own: the sweeper is a green thread of the worker's hub

            self.pid = os.getpid()
            eventlet.spawn_n(self.sweep_forever, eventlet.sleep)
        try:
            return self.app(env, start_response)
        finally:
            self.ended += 1

    def sweep_forever(self, sleep):
        swept, trailing = 0, False
        while True:
            sleep(SWEEP_S)
            if self.ended != swept or trailing:
                # Once more after the last request: its response may still have been on its way at this sweep.
                trailing = self.ended != swept
                swept = self.ended
                gc.collect()


def garbage_sweep(global_conf, **local_conf):
    return GarbageSweep


def main():
    from swift.common import constraints, storage_policy, utils

    sys.modules["firecrest_launch"] = sys.modules[__name__]  # for paste: the proxy's filter above
    swift_conf, script = sys.argv[1:3]
    utils.SWIFT_CONF_FILE = swift_conf
    utils.HASH_PATH_PREFIX = utils.HASH_PATH_SUFFIX = b""
    utils.validate_configuration()
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()
    sys.argv = [script, *sys.argv[3:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
