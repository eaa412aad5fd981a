"""Accounts: register, log in (JWT), log out (revoke the token)."""

import asyncio
import secrets

from fastapi import APIRouter, HTTPException, Request, Response

from serve_app.auth import CSRF_COOKIE, SESSION_COOKIE
from serve_app.deps import UNAUTHORIZED, ClientIP, Ctx, CurrentUser
from serve_app.responses import ERRORS, ValidationErrors
from serve_app.schemas import Credentials, LoginCredentials, TokenOut, UserOut, iso_time
from serve_app.security import (
    burn_verify_time,
    create_access_token,
    hash_password,
    verify_password,
)

router = APIRouter(prefix="/auth", tags=["auth"])
BAD_LOGIN = HTTPException(401, "Invalid email or password.", headers={"WWW-Authenticate": "Bearer"})


@router.post("/register", status_code=201, response_model=UserOut, summary="Create an account",
             responses=ERRORS(409, 413, 429, 503) | ValidationErrors)
async def register(body: Credentials, ctx: Ctx, ip: ClientIP) -> UserOut:
    await ctx.limiter.hit("register-ip", ctx.settings.rate_limit_login, ip)
    password_hash = await asyncio.to_thread(hash_password, body.password)
    user = await ctx.accounts.create_user(body.email, password_hash)
    if user is None:
        raise HTTPException(409, "An account with this email already exists.")
    return UserOut(user_id=user["user_id"], email=user["email"], created_at=iso_time(user["created_at"]))


async def check_credentials(ctx, body: LoginCredentials, ip: str) -> dict:
    """The user for these credentials, after the per-IP and per-email login limits; else 401."""
    await ctx.limiter.hit("login-ip", ctx.settings.rate_limit_login, ip)
    await ctx.limiter.hit("login-email", ctx.settings.rate_limit_login, body.email)
    user = await ctx.accounts.get_user_by_email(body.email)
    if user is None:
        await asyncio.to_thread(burn_verify_time, body.password)  # same cost as a wrong password
        raise BAD_LOGIN
    if not await asyncio.to_thread(verify_password, user["password_hash"], body.password):
        raise BAD_LOGIN
    return user


@router.post("/login", response_model=TokenOut, summary="Log in and get a bearer token",
             responses=ERRORS(401, 413, 429, 503) | ValidationErrors)
async def login(body: LoginCredentials, ctx: Ctx, ip: ClientIP) -> TokenOut:
    user = await check_credentials(ctx, body, ip)
    token, expires_in, _ = create_access_token(ctx.settings, user["user_id"])
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=204, summary="Revoke the presented token", responses=ERRORS(401, 503))
async def logout(user: CurrentUser, ctx: Ctx) -> Response:
    if user.claims is None or not user.claims.jti or user.claims.source != "local":
        raise UNAUTHORIZED
    await ctx.accounts.revoke_jti(user.claims.jti, user.claims.exp or 0)
    return Response(status_code=204)


@router.post("/session", response_model=UserOut, summary="Log in the web UI (HttpOnly session cookie)",
             description="Sets an HttpOnly, SameSite=Strict `session` cookie holding a JWT, and a `csrf_token` "
             "cookie whose value must be echoed in an `X-CSRF-Token` header on cookie-authenticated writes.",
             responses=ERRORS(401, 413, 429, 503) | ValidationErrors)
async def create_session(body: LoginCredentials, request: Request, response: Response, ctx: Ctx,
                         ip: ClientIP) -> UserOut:
    user = await check_credentials(ctx, body, ip)
    token, expires_in, _ = create_access_token(ctx.settings, user["user_id"])
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, max_age=expires_in, httponly=True, samesite="strict",
                        secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), max_age=expires_in, httponly=False,
                        samesite="strict", secure=secure, path="/")
    return UserOut(user_id=user["user_id"], email=user["email"], created_at=iso_time(user["created_at"]))


@router.delete("/session", status_code=204, summary="Log out of the web UI", responses=ERRORS(401, 503))
async def end_session(user: CurrentUser, ctx: Ctx) -> Response:
    if user.claims is not None and user.claims.jti:
        await ctx.accounts.revoke_jti(user.claims.jti, user.claims.exp or 0)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
