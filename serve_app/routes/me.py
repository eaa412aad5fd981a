"""The signed-in user: profile, job statistics, API tokens."""

from fastapi import APIRouter, HTTPException, Response

from serve_app.deps import Ctx, CurrentUser
from serve_app.responses import ERRORS, ValidationErrors
from serve_app.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenOut,
    StatsOut,
    UserOut,
    iso_time,
)
from serve_app.security import new_api_token

router = APIRouter(prefix="/me", tags=["me"])
MAX_TOKENS_PER_USER = 20


@router.get("", response_model=UserOut, summary="Your profile", responses=ERRORS(401, 503))
async def get_me(user: CurrentUser, ctx: Ctx) -> UserOut:
    stored = await ctx.accounts.get_user(user.user_id)
    created = iso_time(stored["created_at"]) if stored else None
    return UserOut(user_id=user.user_id, email=user.email, created_at=created)


@router.get("/stats", response_model=StatsOut, summary="Your job statistics", responses=ERRORS(401, 503))
async def get_my_stats(user: CurrentUser, ctx: Ctx) -> StatsOut:
    counters = await ctx.store.owner_stats(user.user_id)
    completed, failed, cancelled = (counters.get(k, 0) for k in ("completed", "failed", "cancelled"))
    total = counters.get("total_jobs", 0)
    average = round(counters.get("duration_ms_sum", 0) / completed) if completed else None
    return StatsOut(total_jobs=total, completed=completed, failed=failed, cancelled=cancelled,
                    running=max(0, total - completed - failed - cancelled), avg_duration_ms=average)


def _token_out(token: dict) -> ApiTokenOut:
    return ApiTokenOut(id=token["id"], name=token["name"], created_at=iso_time(token["created_at"]),
                       last_used_at=iso_time(token.get("last_used_at")))


@router.post("/tokens", status_code=201, response_model=ApiTokenCreated, summary="Create an API token",
             description="The secret is returned once and stored only as a hash.",
             responses=ERRORS(401, 409, 413, 503) | ValidationErrors)
async def create_token(body: ApiTokenCreate, user: CurrentUser, ctx: Ctx) -> ApiTokenCreated:
    if len(await ctx.accounts.list_api_tokens(user.user_id)) >= MAX_TOKENS_PER_USER:
        raise HTTPException(409, f"You already have {MAX_TOKENS_PER_USER} API tokens; revoke one first.")
    secret, token_hash = new_api_token()
    token = await ctx.accounts.create_api_token(user.user_id, body.name, token_hash)
    return ApiTokenCreated(**_token_out(token).model_dump(), token=secret)


@router.get("/tokens", response_model=list[ApiTokenOut], summary="Your API tokens (never the secrets)",
            responses=ERRORS(401, 503))
async def list_tokens(user: CurrentUser, ctx: Ctx) -> list[ApiTokenOut]:
    return [_token_out(t) for t in await ctx.accounts.list_api_tokens(user.user_id)]


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an API token", responses=ERRORS(401, 404, 503))
async def revoke_token(token_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    if len(token_id) > 64 or not await ctx.accounts.delete_api_token(user.user_id, token_id):
        raise HTTPException(404, "Token not found.")
    return Response(status_code=204)


@router.delete("", status_code=204, summary="Delete your account and its API tokens",
               description="Every token of the account stops working at once; job records expire with "
               "their TTL.", responses=ERRORS(401, 503))
async def delete_account(user: CurrentUser, ctx: Ctx) -> Response:
    if user.external:  # by its provider's JWT or by one of its API tokens
        raise HTTPException(409, "Accounts of an external identity provider are managed there.")
    await ctx.accounts.delete_user(user.user_id)
    return Response(status_code=204)
