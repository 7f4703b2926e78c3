"""Hostile tokens for a real one: what a gateway or a service must answer with 401.

    import forged_tokens                  # tests/ is not a package: put it on sys.path first
    tokens = forged_tokens.forged(real_token, realm_public_pem)                 # name -> token
    headers = forged_tokens.hostile_headers(real_token)                         # name -> request headers

Every forged RS256 token is signed with a freshly generated RSA key, never the realm's. By default the claim
forgeries (expired, wrong iss, ...) are signed with an untrusted key too, so a verifier rejects them for the
signature alone. To prove that each *claim* check works, give `forged(..., key=K, kid=KID)` a key the verifier
under test trusts (e.g. publish `jwk(K, KID)` in the JWKS of a test gateway): then only the claim can fail, and
`resign(real_token, K, KID)` is the matching positive control.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def fresh_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half as a JWKS entry (`{"keys": [jwk(...)]}`)."""
    entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**entry, "kid": kid, "use": "sig", "alg": "RS256"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _encode(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str | None) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def resign(real_token: str, key: rsa.RSAPrivateKey, kid: str, **changes: Any) -> str:
    """The real token's claims (fresh iat/exp, `changes` applied, None deletes a claim) signed with `key`."""
    _, claims = parts(real_token)
    now = int(time.time())
    claims.update(iat=now, exp=now + 300)
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return sign(claims, key, kid)


def forged(real_token: str, realm_public_pem: str, key: rsa.RSAPrivateKey | None = None,
           kid: str | None = None) -> dict[str, str]:
    """name -> token; each must be rejected. `key`/`kid`: sign the claim forgeries with a key the verifier trusts."""
    header, claims = parts(real_token)
    realm_kid = header.get("kid")
    claim_key, claim_kid = (key, kid) if key is not None else (fresh_key(), realm_kid)
    now = int(time.time())
    head, payload, signature = real_token.split(".")

    def claim_forgery(**changes: Any) -> str:
        return resign(real_token, claim_key, claim_kid, **changes)

    tampered = dict(claims, unix_username="root", sub="00000000-0000-0000-0000-000000000000")
    hs256 = _encode({"alg": "HS256", "typ": "JWT", "kid": realm_kid}, claims)
    hs256 += "." + _b64(hmac.new(realm_public_pem.encode(), hs256.encode(), hashlib.sha256).digest())
    other = fresh_key()
    return {
        "expired": claim_forgery(iat=now - 900, exp=now - 600),
        "expired_just_now": claim_forgery(iat=now - 301, exp=now - 1),
        "not_yet_valid": claim_forgery(nbf=now + 600, exp=now + 900),
        "nbf_not_a_number": claim_forgery(nbf="soon"),
        "wrong_issuer": claim_forgery(iss=claims["iss"] + "-evil"),
        "wrong_audience": claim_forgery(aud="not-" + str(claims.get("aud"))),
        "audience_array_without_ours": claim_forgery(aud=["account", "broker", "realm-management"]),
        "no_exp": claim_forgery(exp=None),
        "exp_not_a_number": claim_forgery(exp="never"),  # "123" would be fine: PyJWT reads int(exp)
        "no_sub": claim_forgery(sub=None),
        "id_token_typ": claim_forgery(typ="ID"),
        "bad_signature": f"{head}.{_b64(json.dumps(tampered).encode())}.{signature}",
        "signature_of_another_token": f"{head}.{payload}.{_b64(b'x' * 256)}",
        "alg_none": _encode({"alg": "none", "typ": "JWT"}, claims) + ".",
        "alg_none_with_signature": _encode({"alg": "none", "typ": "JWT"}, claims) + "." + signature,
        "hs256_with_realm_public_key": hs256,
        "other_key_same_kid": sign(dict(claims, iat=now, exp=now + 300), other, realm_kid),
        "other_key_unknown_kid": sign(dict(claims, iat=now, exp=now + 300), other, "unknown-kid"),
        "other_key_no_kid": sign(dict(claims, iat=now, exp=now + 300), other, None),
        "garbage": "not-a-token",
        "garbage_three_parts": "a.b.c",
        "empty_parts": "..",
        "header_only": head,
        "truncated": real_token[:-10],
    }


def hostile_headers(real_token: str) -> dict[str, dict[str, str]]:
    """name -> request headers that must get 401 although some carry the real token."""
    return {
        "missing": {},
        "basic": {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()},
        "bearer_empty": {"Authorization": "Bearer "},
        "token_without_scheme": {"Authorization": real_token},
        "other_scheme": {"Authorization": f"Token {real_token}"},
        "token_as_query_or_cookie_only": {"Cookie": f"jwt={real_token}"},
    }
