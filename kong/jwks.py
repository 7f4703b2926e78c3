"""The realm's JWKS as PEM files: HAProxy's jwt_verify (and Kong) take RSA keys as SubjectPublicKeyInfo PEM."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path
from typing import Any


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _der_uint(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # + 1: a leading 0 keeps it positive


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def rsa_public_pem(n: int, e: int) -> str:
    """SubjectPublicKeyInfo PEM for an RSA public key (what HAProxy's jwt_verify and Kong accept)."""
    rsa_encryption = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = _der(0x30, rsa_encryption + _der(0x03, b"\x00" + _der(0x30, _der_uint(n) + _der_uint(e))))
    body = base64.b64encode(spki).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"]) + "\n"


def jwks_to_pems(jwks: dict[str, Any]) -> dict[str, str]:
    """kid -> PEM for the RSA signing keys usable with RS256 (Keycloak also publishes an RSA-OAEP `enc` key)."""
    pems: dict[str, str] = {}
    for i, key in enumerate(jwks.get("keys", [])):
        if key.get("kty") != "RSA" or key.get("use", "sig") != "sig" or key.get("alg", "RS256") != "RS256":
            continue
        pems[str(key.get("kid", f"key{i}"))] = rsa_public_pem(_b64url_int(key["n"]), _b64url_int(key["e"]))
    return pems


def write_keys(pems: dict[str, str], key_dir: Path) -> list[Path]:
    """One `<kid>.pem` per key (file names sanitised); stale PEM files from earlier keys are removed."""
    key_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (kid, pem) in enumerate(pems.items()):
        path = key_dir / f"{i}-{re.sub(r'[^A-Za-z0-9._-]', '_', kid)[:80]}.pem"
        path.write_text(pem)
        paths.append(path)
    for old in key_dir.glob("*.pem"):
        if old not in paths:
            old.unlink()
    return paths


def read_jwks(source: str) -> dict[str, Any]:
    """The JWKS from a file or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as r:  # noqa: S310 (the operator's JWKS URL)
            return json.load(r)
    return json.loads(Path(source).read_text())
