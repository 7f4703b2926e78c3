"""Bearer token validation in the service itself (the gateway already checked; we never trust network position).

PyJWT with the issuer's JWKS: keys cached by kid and refetched on an unknown kid (at most once per
REFETCH_INTERVAL, so random kids cannot make us hammer the issuer); algorithms pinned; exp, nbf, iat, iss and
aud checked; the token's application (azp) registered at the site (common/scopes.py); the unix username taken from
the configured claim.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from .config import AuthConfig
from .errors import Unauthorized
from .scopes import check_application

REFETCH_INTERVAL = 10.0
RETRY_AFTER_FAILURE = 1.0  # after a failed fetch of the issuer's keys
LEEWAY = 5  # seconds of clock skew tolerated on exp/nbf/iat
CACHE_SIZE = 4096
UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Identity:
    username: str
    token: str = field(repr=False)
    claims: dict[str, Any] = field(repr=False, compare=False)
    # Background work of a task (its token may expire while it runs): certificates come from the resume route.
    background: bool = field(default=False, compare=False)


class TokenValidator:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._client = jwt.PyJWKClient(config.jwks_url, cache_jwk_set=False, timeout=5)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        # Verified tokens (about 0.3 ms of CPU each to verify again); only ever holds tokens that passed.
        self._valid: dict[str, Identity] = {}

    def _key(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at > REFETCH_INTERVAL:
                self._fetched_at = time.monotonic()
                try:
                    jwks = self._client.get_jwk_set()
                except jwt.PyJWKClientError as e:
                    # The issuer is down (or still starting: a service may come up first): try again soon, or
                    # every valid token would be refused for a whole interval after it is back.
                    self._fetched_at -= REFETCH_INTERVAL - RETRY_AFTER_FAILURE
                    raise Unauthorized(f"Cannot fetch the issuer's keys: {e}") from e
                self._keys = {k.key_id: k.key for k in jwks.keys if k.key_id and k.public_key_use in (None, "sig")}
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("JWT token has invalid signature")
        return key

    def validate(self, token: str, allow_expired: bool = False) -> Identity:
        """The caller of a token; a token validated before is served from memory until it expires.

        `allow_expired` skips only the expiry check (signature, issuer, audience still hold): internal routes
        that record the outcome of work a user started minutes or hours ago, behind the services' credential."""
        if allow_expired:
            return self._validate(token, verify_exp=False)
        cached = self._valid.get(token)
        if cached is not None and time.time() < cached.claims["exp"] + LEEWAY:
            return cached
        identity = self._validate(token)
        if len(self._valid) >= CACHE_SIZE:
            now = time.time()
            self._valid = {t: i for t, i in self._valid.items() if now < i.claims["exp"] + LEEWAY}
            if len(self._valid) >= CACHE_SIZE:
                self._valid.clear()
        self._valid[token] = identity
        return identity

    def _validate(self, token: str, verify_exp: bool = True) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Unauthorized("Bad header or JWT, general exception raised") from e
        if header.get("alg") not in self.config.algorithms:
            raise Unauthorized("JWT token has invalid signature algorithm")
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError as e:
            raise Unauthorized("JWT token has expired") from e
        except jwt.ImmatureSignatureError as e:
            raise Unauthorized("JWT token is not yet valid") from e
        except jwt.InvalidAudienceError as e:
            raise Unauthorized("Invalid audience in JWT token") from e
        except jwt.InvalidIssuerError as e:
            raise Unauthorized("Invalid issuer in JWT token") from e
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"JWT token has no '{e.claim}' claim") from e
        except jwt.InvalidSignatureError as e:
            raise Unauthorized("JWT token has invalid signature") from e
        except jwt.PyJWTError as e:
            raise Unauthorized("Bad header or JWT, general exception raised") from e
        check_application(self.config, claims)  # a valid token, but of an application the site did not register
        username = claims.get(self.config.username_claim)
        if not isinstance(username, str) or not UNIX_NAME.match(username):
            raise Unauthorized(f"JWT token has no valid '{self.config.username_claim}' claim")
        return Identity(username=username, token=token, claims=claims)


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        raise Unauthorized("No Auth Header given")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("No Auth Header given")
    return token.strip()
