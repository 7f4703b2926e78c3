"""Signs SSH user certificates with the site's user CA (ssh-keygen), for one principal only."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import struct
import subprocess
import tempfile
from pathlib import Path

from common.errors import BadRequest, FirecrestError

ALLOWED_KEY_TYPES = ("ssh-ed25519",)
KEY_ID = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
PRINCIPAL = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # one unix name: a comma would name several principals


class SigningFailed(FirecrestError):
    status = 500


def check_public_key(text: str) -> str:
    """One `ssh-ed25519 <base64>` public key whose blob really is of that type; anything else is refused."""
    words = text.strip().split()
    if len(words) not in (2, 3) or "\n" in text.strip():
        raise BadRequest("public_key must be one OpenSSH public key line")
    kind, blob = words[0], words[1]
    if kind not in ALLOWED_KEY_TYPES:
        raise BadRequest(f"key type {kind[:40]!r} is not allowed (allowed: {', '.join(ALLOWED_KEY_TYPES)})")
    try:
        raw = base64.b64decode(blob, validate=True)
        (n,) = struct.unpack(">I", raw[:4])
        inner = raw[4 : 4 + n].decode()
    except (binascii.Error, struct.error, UnicodeDecodeError) as e:
        raise BadRequest("public_key is not a valid OpenSSH public key") from e
    if inner != kind or len(raw) != 4 + n + 4 + 32:
        raise BadRequest("public_key is not a valid ssh-ed25519 key")
    return f"{kind} {blob}"


def sign(ca_key: Path, public_key: str, principal: str, key_id: str, validity_minutes: int) -> str:
    """A certificate for `principal` only, with no PTY, forwarding or user-rc permission (`-O clear`)."""
    if not KEY_ID.match(key_id):
        raise BadRequest("invalid key id")
    if not PRINCIPAL.match(principal):
        raise BadRequest("invalid principal")
    with tempfile.TemporaryDirectory(prefix="certificator-") as tmp:
        pub = Path(tmp) / "user.pub"
        pub.write_text(public_key + "\n")
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-s", str(ca_key), "-I", key_id, "-n", principal,
             "-V", f"-1m:+{validity_minutes}m", "-z", str(secrets.randbits(63)), "-O", "clear", str(pub)],
            capture_output=True, text=True, timeout=10,
        )
        cert = Path(tmp) / "user-cert.pub"
        if proc.returncode != 0 or not cert.exists():
            # ssh-keygen's message names files, never key material.
            raise SigningFailed(f"signing failed: {proc.stderr.strip()[:200]}")
        return cert.read_text().strip()
