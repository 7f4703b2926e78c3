"""Run an unmodified Swift server script with swift.conf taken from the stack dir.

Swift 2.30 reads the hash, storage policies and [swift-constraints] only from the hard-coded
/etc/swift/swift.conf (swift_dir moves only the rings), so point the module globals at our file and
reload them before any server module imports constraint values.

Usage: launch.py SWIFT_CONF SERVER_SCRIPT SERVER_CONF [server options]
"""

import runpy
import sys

from swift.common import constraints, storage_policy, utils

swift_conf, script = sys.argv[1:3]
utils.SWIFT_CONF_FILE = swift_conf
utils.HASH_PATH_PREFIX = utils.HASH_PATH_SUFFIX = b""
utils.validate_configuration()
constraints.reload_constraints()
storage_policy.reload_storage_policies()
sys.argv = [script, *sys.argv[3:]]
runpy.run_path(script, run_name="__main__")
