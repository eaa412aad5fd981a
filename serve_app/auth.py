"""Who is calling: a bearer JWT (ours or an external issuer's), an API token, or the UI's session cookie."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from fastapi import Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve_app.context import AppContext
from serve_app.security import (
    InvalidToken,
    TokenClaims,
    decode_access_token,
    hash_api_token,
    looks_like_api_token,
)

SESSION_COOKIE = "session"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Users of an external issuer are ``ext:<sub>``; local ids are uuid4 strings, so the two never collide.
EXTERNAL_PREFIX = "ext:"


@dataclass(frozen=True)
class AuthUser:
    user_id: str
    email: Optional[str]
    source: str  # "local", "external", "api_token" or "session"
    claims: Optional[TokenClaims] = None

    @property
    def external(self) -> bool:
        """An identity provider's user (by its JWT or by one of its API tokens): no local record."""
        return self.user_id.startswith(EXTERNAL_PREFIX)


# FastAPI's HTTPBearer parses the header and declares the scheme in the OpenAPI schema (the docs'
# Authorize button). Without auto_error it returns None for a missing, non-Bearer or empty header.
bearer_scheme = HTTPBearer(auto_error=False, description="A JWT from `/auth/login` or an API token (`rjt_...`).")


async def _from_jwt(ctx: AppContext, token: str, source: str) -> Optional[AuthUser]:
    try:
        claims = await asyncio.to_thread(decode_access_token, ctx.settings, token, ctx.jwks_client) \
            if ctx.jwks_client else decode_access_token(ctx.settings, token)
    except InvalidToken:
        return None
    if claims.source == "external":
        return AuthUser(user_id=EXTERNAL_PREFIX + claims.sub, email=None, source="external", claims=claims)
    user = await ctx.accounts.get_user_unless_revoked(claims.sub, claims.jti)
    if user is None:
        return None
    return AuthUser(user_id=user["user_id"], email=user["email"], source=source, claims=claims)


async def _from_api_token(ctx: AppContext, token: str) -> Optional[AuthUser]:
    """The token's owner. Revocation is the token record's deletion (by its owner, or with the local
    account that owns it), so an external user's token needs no local record, only its own."""
    found = await ctx.accounts.resolve_api_token(hash_api_token(token))
    if found is None:
        return None
    if found["user_id"].startswith(EXTERNAL_PREFIX):
        return AuthUser(user_id=found["user_id"], email=None, source="api_token")
    user = await ctx.accounts.get_user(found["user_id"])
    if user is None:
        return None
    return AuthUser(user_id=user["user_id"], email=user["email"], source="api_token")


def _csrf_ok(request: Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    return bool(cookie) and hmac.compare_digest(cookie, header)


async def authenticate(request: Request, ctx: AppContext,
                       credentials: Optional[HTTPAuthorizationCredentials]) -> Optional[AuthUser]:
    """The caller, or None; every failure looks the same to the client. A request that sends an
    Authorization header is judged by it alone (never by a cookie it also carries)."""
    if credentials is not None or "authorization" in request.headers:
        return await _from_bearer(ctx, credentials.credentials if credentials is not None else "")
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        if request.method not in SAFE_METHODS and not _csrf_ok(request):
            return None
        return await _from_jwt(ctx, session, "session")
    return None


async def _from_bearer(ctx: AppContext, token: str) -> Optional[AuthUser]:
    if not token:
        return None
    if looks_like_api_token(token):
        return await _from_api_token(ctx, token)
    return await _from_jwt(ctx, token, "local")


async def authenticate_socket(websocket: WebSocket, ctx: AppContext, token: Optional[str]) -> Optional[AuthUser]:
    """The caller of a WebSocket handshake, or None: the bearer token of ``?token=`` or of an
    Authorization header (judged alone, as in ``authenticate``), else the session cookie, but only
    from an allowed origin: browsers send cookies with cross-site handshakes, and no CORS check
    stands in the way of a WebSocket."""
    if token is not None:
        return await _from_bearer(ctx, token)
    if "authorization" in websocket.headers:
        return await _from_bearer(ctx, _bearer_token(websocket.headers["authorization"]))
    session = websocket.cookies.get(SESSION_COOKIE)
    if session and origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host", ""),
                                  ctx.settings.cors_origin_list):
        return await _from_jwt(ctx, session, "session")
    return None


def _bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def origin_allowed(origin: Optional[str], host: str, allowed: list[str]) -> bool:
    """A handshake's Origin is one of the CORS origins or this service's own host. No Origin at all:
    not a browser (browsers always send one), so no cookie was sent on a user's behalf."""
    if origin is None:
        return True
    if origin.rstrip("/") in (a.rstrip("/") for a in allowed):
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()
