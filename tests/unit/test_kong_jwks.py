"""kong/jwks.py: the realm's JWKS -> PEM files for HAProxy (no site needed)."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kong.jwks import jwks_to_pems, write_keys


def jwk_of(key: rsa.RSAPrivateKey, **extra: str) -> dict:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), **extra}


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_jwks_rsa_key_becomes_the_same_public_key(bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pems = jwks_to_pems({"keys": [jwk_of(key, kid="k1", use="sig", alg="RS256")]})
    loaded = serialization.load_pem_public_key(pems["k1"].encode())
    assert loaded.public_numbers() == key.public_key().public_numbers()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    expected = key.public_key().public_bytes(serialization.Encoding.PEM, spki)
    assert pems["k1"] == expected.decode()


def test_only_rs256_signing_keys_are_taken():
    sig, enc, rs512, nouse = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    jwks = {"keys": [
        jwk_of(sig, kid="sig", use="sig", alg="RS256"),
        jwk_of(enc, kid="enc", use="enc", alg="RSA-OAEP"),  # Keycloak publishes one of these too
        jwk_of(rs512, kid="rs512", use="sig", alg="RS512"),
        jwk_of(nouse, kid="nouse"),  # no use, no alg: a signing key
        {**ec_jwk, "kid": "ec", "use": "sig", "alg": "ES256"},
    ]}
    assert sorted(jwks_to_pems(jwks)) == ["nouse", "sig"]


def test_key_files_are_named_safely_and_stale_ones_removed(tmp_path):
    (tmp_path / "old.pem").write_text("x")
    paths = write_keys({"../../etc/passwd": "A", "k/2": "B"}, tmp_path)
    assert [p.name for p in paths] == ["0-.._.._etc_passwd.pem", "1-k_2.pem"]
    assert all(p.parent == tmp_path for p in paths) and not (tmp_path / "old.pem").exists()
