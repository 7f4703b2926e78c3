"""Token validation with a local key set (the real issuer is exercised in the integration tests)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.auth import Identity, TokenValidator, bearer
from common.config import AuthConfig
from common.errors import Unauthorized

ISSUER = "http://issuer.test/realms/firecrest"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def validator() -> TokenValidator:
    v = TokenValidator(AuthConfig(ISSUER, "firecrest", "unix_username", ("RS256",)))
    v._keys = {"k1": KEY.public_key()}
    v._fetched_at = time.monotonic()  # no refetch during the test
    return v


def token(key=KEY, kid="k1", alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": ["firecrest", "account"], "sub": "s", "iat": now, "exp": now + 300,
              "unix_username": "alice"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_valid_token_gives_the_unix_user(validator):
    assert validator.validate(token()).username == "alice"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: token(exp=int(time.time()) - 60), "expired"),
        (lambda: token(nbf=int(time.time()) + 600), "not yet valid"),
        (lambda: token(iss="http://evil.test/realms/firecrest"), "issuer"),
        (lambda: token(aud="account"), "audience"),
        (lambda: token(exp=None), "'exp'"),
        (lambda: token(sub=None), "'sub'"),
        (lambda: token(key=OTHER), "signature"),
        (lambda: token(key=OTHER, kid="unknown"), "signature"),
        (lambda: jwt.encode({"iss": ISSUER}, None, algorithm="none"), "algorithm"),
        (lambda: jwt.encode({"iss": ISSUER, "unix_username": "alice"}, b"x" * 32, algorithm="HS256",
                            headers={"kid": "k1"}), "algorithm"),
        (lambda: "garbage", "general"),
        (lambda: token()[:-10] + "A" * 10, "signature"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(validator, make, reason):
    with pytest.raises(Unauthorized) as err:
        validator.validate(make())
    assert reason in err.value.error


@pytest.mark.parametrize("name", ["root; id", "-rf", "../alice", "Alice", "", "a" * 33, "$(id)", 7, None])
def test_username_must_be_a_unix_name(validator, name):
    with pytest.raises(Unauthorized, match="unix_username"):
        validator.validate(token(unix_username=name) if name is not None else token(unix_username=None))


def test_hs256_with_the_public_key_as_secret_is_refused(validator):
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    payload = b64(json.dumps({"iss": ISSUER, "aud": "firecrest", "sub": "s", "unix_username": "alice",
                              "iat": int(time.time()), "exp": int(time.time()) + 60}).encode())
    sig = b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    with pytest.raises(Unauthorized, match="algorithm"):
        validator.validate(f"{header}.{payload}.{sig}")


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "token"])
def test_bearer_header_is_required(header):
    with pytest.raises(Unauthorized, match="No Auth Header given"):
        bearer(header)


def test_a_cached_token_still_expires(validator):
    good = token()
    assert validator.validate(good) is validator.validate(good)  # the second one from the cache
    # A token cached while it was valid, and expired since: validated again, and refused.
    old = token(exp=int(time.time()) - 60)
    validator._valid[old] = Identity("alice", old, {"exp": int(time.time()) - 60})
    with pytest.raises(Unauthorized, match="expired"):
        validator.validate(old)


def test_only_valid_tokens_are_cached(validator):
    bad = token(iss="http://evil.test/realms/firecrest")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            validator.validate(bad)
    assert bad not in validator._valid


def test_a_failed_key_fetch_is_retried_soon():
    """The issuer down (or still starting) when the first token comes must not refuse valid tokens for long."""
    v = TokenValidator(AuthConfig(ISSUER, "firecrest", "unix_username", ("RS256",)))
    answers = [jwt.PyJWKClientError("connection refused"), jwt.PyJWKSet.from_dict({"keys": [
        {**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "use": "sig"}]})]

    def fetch():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    v._client.get_jwk_set = fetch  # type: ignore[method-assign]
    with pytest.raises(Unauthorized, match="Cannot fetch"):
        v.validate(token())
    time.sleep(1.1)
    assert v.validate(token()).username == "alice"
