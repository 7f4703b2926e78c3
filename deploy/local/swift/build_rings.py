"""Builds Swift's rings: `build_rings.py HOST BASE:PORT...` writes BASE.builder and BASE.ring.gz for each, one
device per ring, part power 8, 1 replica (platform-notes 5). Run by Debian's python3 (python3-swift), in the ring
directory: Swift writes each .ring.gz via a temporary file in the cwd and renames it, so a .ring.gz marks a ring
done. One interpreter for all three rings (the CLI takes about 1 s per ring). The native site and the Swift image
both run it."""

import sys

from swift.common.ring import RingBuilder


def main(host: str, rings: list[str]) -> None:
    for arg in rings:
        base, port = arg.rsplit(":", 1)
        builder = RingBuilder(8, 1, 1)
        builder.add_dev({"region": 1, "zone": 1, "ip": host, "port": int(port), "replication_ip": host,
                         "replication_port": int(port), "device": "d1", "weight": 100})
        builder.rebalance()
        builder.save(base + ".builder")
        builder.get_ring().save(base + ".ring.gz")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
