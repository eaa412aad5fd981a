"""Pure security helpers: password hashing, access tokens (JWT), API tokens. No Redis, no logging.

Every call here is CPU-bound and synchronous. Argon2 hashing takes tens of milliseconds and
``decode_access_token`` with a JWKS client may do a blocking HTTP request (on a cache miss), so
async callers should run them in a thread (``starlette.concurrency.run_in_threadpool``).

Access tokens come from two places:

- **local** tokens, issued by ``create_access_token``: HS256 with ``settings.jwt_secret``, no
  ``kid`` header, claims ``sub exp iat nbf iss aud jti``;
- **external** tokens from an identity provider publishing a JWKS (``settings.jwt_jwks_url``):
  RS256 or ES256, verified with the provider's public key picked by ``kid``.

The two paths never share keys or algorithms: the local path pins ``algorithms=["HS256"]`` with
the secret as key, the external path pins ``["RS256", "ES256"]`` with a ``PyJWK`` (whose algorithm
PyJWT binds to the key), so neither an HS256 token signed with a public key nor an RS256 token
checked against the secret can pass.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import jwt
from argon2 import PasswordHasher, Type

if TYPE_CHECKING:  # pragma: no cover
    from serve_app.settings import Settings

__all__ = [
    "API_TOKEN_PREFIX",
    "InvalidToken",
    "TokenClaims",
    "burn_verify_time",
    "create_access_token",
    "decode_access_token",
    "hash_api_token",
    "hash_password",
    "looks_like_api_token",
    "make_jwks_client",
    "new_api_token",
    "verify_password",
]

# -- passwords --------------------------------------------------------------------------

# Argon2id with OWASP's first recommended profile (m=19 MiB, t=2, p=1) instead of the library
# default (RFC 9106 low-memory: m=64 MiB, t=3, p=4). The server has 2 cores: p=4 buys nothing
# there, and the default costs ~150 ms of CPU and 64 MiB per login, so a burst of concurrent
# logins could starve the API or exhaust memory. This profile costs ~40 ms and 19 MiB per hash
# while staying within current guidance. Stored hashes carry their own parameters, so hashes made
# with other parameters keep verifying if this ever changes.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)

# Hash of a random password with the same parameters, verified when the email is unknown so that
# such a login costs as much as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Return an encoded Argon2id hash (``$argon2id$v=19$m=...``) with a fresh random salt."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; False on mismatch or on an invalid hash. Never raises."""
    try:
        return _HASHER.verify(stored_hash, password)
    except Exception:  # VerifyMismatchError, VerificationError, InvalidHashError, TypeError...
        return False


def burn_verify_time(password: str) -> None:
    """Spend the time of one failed verification (use it when the account does not exist)."""
    verify_password(_DUMMY_HASH, password)


# -- access tokens ----------------------------------------------------------------------

LOCAL_ALGORITHM = "HS256"
EXTERNAL_ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 10
MAX_TOKEN_LENGTH = 8192
_LOCAL_REQUIRED = ["exp", "iat", "sub", "iss", "aud", "jti"]
_EXTERNAL_REQUIRED = ["exp", "sub"]


class InvalidToken(Exception):
    """Any reason a bearer token is not accepted. Deliberately carries no detail."""

    def __init__(self) -> None:
        super().__init__("invalid token")


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    jti: Optional[str]
    exp: Optional[int]
    source: str  # "local" | "external" | "api_token"


def create_access_token(settings: "Settings", subject: str) -> tuple[str, int, TokenClaims]:
    """Issue a local HS256 token for ``subject``; returns (jwt, expires_in_seconds, claims)."""
    if not settings.jwt_secret:
        raise ValueError("JWT_SECRET is not set; cannot issue access tokens")
    if not subject:
        raise ValueError("subject must not be empty")
    now = int(time.time())
    expires_in = int(settings.jwt_expire_minutes) * 60
    claims = TokenClaims(sub=subject, jti=uuid.uuid4().hex, exp=now + expires_in, source="local")
    payload = {
        "sub": claims.sub,
        "exp": claims.exp,
        "iat": now,
        "nbf": now,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": claims.jti,
    }
    token = jwt.encode(payload, settings.jwt_secret, algorithm=LOCAL_ALGORITHM)
    return token, expires_in, claims


def decode_access_token(
    settings: "Settings", token: str, jwks_client: Optional[jwt.PyJWKClient] = None
) -> TokenClaims:
    """Verify a bearer token and return its claims, or raise ``InvalidToken`` (and nothing else).

    With a ``jwks_client``, tokens whose header names a ``kid`` or an asymmetric algorithm go to the
    external path (the JWKS fetch is blocking; a network failure is also ``InvalidToken``).
    """
    try:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken()
        header = jwt.get_unverified_header(token)
        if jwks_client is not None and ("kid" in header or header.get("alg") in EXTERNAL_ALGORITHMS):
            return _decode_external(settings, token, jwks_client)
        return _decode_local(settings, token)
    except InvalidToken:
        raise
    except Exception:  # every PyJWT / PyJWKClient / network / decoding error
        raise InvalidToken() from None


def _decode_local(settings: "Settings", token: str) -> TokenClaims:
    if not settings.jwt_secret:  # an empty HMAC key would accept tokens anyone can forge
        raise InvalidToken()
    payload = jwt.decode(
        token,
        settings.jwt_secret,
        algorithms=[LOCAL_ALGORITHM],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=LEEWAY_SECONDS,
        options={"require": _LOCAL_REQUIRED, "verify_signature": True},
    )
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidToken()
    return _claims(payload, jti=jti, source="local")


def _decode_external(settings: "Settings", token: str, jwks_client: jwt.PyJWKClient) -> TokenClaims:
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    if signing_key.algorithm_name not in EXTERNAL_ALGORITHMS:  # e.g. a symmetric "oct" key in the JWKS
        raise InvalidToken()
    payload = jwt.decode(
        token,
        signing_key,
        algorithms=list(EXTERNAL_ALGORITHMS),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=LEEWAY_SECONDS,
        options={"require": _EXTERNAL_REQUIRED, "verify_signature": True},
    )
    jti = payload.get("jti")
    return _claims(payload, jti=jti if isinstance(jti, str) and jti else None, source="external")


def _claims(payload: dict, *, jti: Optional[str], source: str) -> TokenClaims:
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken()
    return TokenClaims(sub=sub, jti=jti, exp=int(payload["exp"]), source=source)


def make_jwks_client(url: str) -> jwt.PyJWKClient:
    """A JWKS client for ``url`` (http/https only) that caches the key set for 5 minutes.

    ``cache_keys=True`` also memoises each ``kid`` -> key lookup for the life of the client, so a
    key removed from the JWKS keeps verifying until the process (or client) is recreated; unknown
    kids trigger at most one refetch per 30 s cooldown.
    """
    try:
        return jwt.PyJWKClient(url, cache_keys=True, max_cached_keys=16, lifespan=300, timeout=5)
    except jwt.PyJWKClientError as exc:
        raise ValueError(f"invalid JWKS URL: {exc}") from None


# -- API tokens -------------------------------------------------------------------------

API_TOKEN_PREFIX = "rjt_"
_API_TOKEN_BODY_LENGTH = 43  # len(secrets.token_urlsafe(32))
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_api_token() -> tuple[str, str]:
    """Return (secret shown once to the user, sha256 hex stored server-side)."""
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, hash_api_token(secret)


def hash_api_token(secret: str) -> str:
    """SHA-256 hex of the whole secret (prefix included). The secret has 256 random bits, so a
    fast unsalted hash is enough: there is nothing to brute-force."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_api_token(value: str) -> bool:
    """True for strings shaped like ``new_api_token`` secrets (to pick API token vs JWT auth)."""
    if not isinstance(value, str) or not value.startswith(API_TOKEN_PREFIX):
        return False
    body = value[len(API_TOKEN_PREFIX):]
    return len(body) == _API_TOKEN_BODY_LENGTH and set(body) <= _URLSAFE
