"""Job kinds used only by tests, loaded through the EXTRA_JOB_KIND_MODULES plug-in setting."""

import os
import time

from pydantic import BaseModel, ConfigDict, Field

from compute.kinds import JobKind, RangeParams, RetryPolicy, range_kind, split_range
from compute.kinds.range_sum import sum_range


def _sleep_then_sum(start: int, end: int) -> int:
    """Sleeps one millisecond per number in the chunk, so tests can watch a job run."""
    deadline = time.monotonic() + (end - start + 1) / 1000
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return sum_range(start, end)


def _explode(start: int, end: int) -> int:
    if start > 1:
        raise ValueError(f"refusing to sum {start}..{end}")
    time.sleep(0.2)
    return sum_range(start, end)


def _counted_chunk(chunk: dict, ctx) -> int:
    """sleepy_sum that also notes each run of the chunk in Redis (``executions_key``), so a test can
    tell a chunk run twice from one run once."""
    import redis

    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        client.rpush(executions_key(ctx.job_id), ctx.index)
    return _sleep_then_sum(chunk["start"], chunk["end"])


def executions_key(job_id: str) -> str:
    return f"test:executions:{job_id}"


class FlakyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(ge=1, le=1000)
    failures: int = Field(2, ge=0, le=5, description="transient failures of each chunk before it succeeds")
    fail_chunk: int = Field(-1, description="this chunk fails for good, after `fail_delay` s (-1: none)")
    fail_while_exists: str = Field("", description="...but only while this file exists ('': always)")
    fail_delay: float = Field(0.0, ge=0, le=10)
    sleep: float = Field(0.0, ge=0, le=10, description="seconds each chunk works, reporting progress")


def _flaky_chunk(chunk: dict, ctx) -> dict:
    """Fails with a ConnectionError (transient) on its first ``failures`` attempts, then sums."""
    for step in range(10):
        time.sleep(chunk["sleep"] / 10)
        ctx.progress((step + 1) / 10)
    if ctx.index == chunk["fail_chunk"] and (not chunk["fail_while_exists"] or os.path.exists(chunk["fail_while_exists"])):
        time.sleep(chunk["fail_delay"])
        raise ValueError("this chunk always fails")
    if ctx.attempt <= chunk["failures"]:
        raise ConnectionError(f"flaky backend (attempt {ctx.attempt})")
    return {"sum": sum_range(chunk["start"], chunk["end"]), "attempt": ctx.attempt}


def _flaky_split(params: FlakyParams, chunks: int, ctx) -> list[dict]:
    extra = params.model_dump(exclude={"n"})
    return [dict(r, **extra) for r in split_range(params.n, chunks)]


def _flaky_combine(outputs: list, ctx) -> dict:
    return {"sum": sum(o["sum"] for o in outputs), "attempts": [o["attempt"] for o in outputs]}


class BigParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=10_000_000, description="characters in the result")


KINDS = [
    range_kind("sleepy_sum", "range_sum that takes 1 ms per number", _sleep_then_sum, timeout_seconds=120),
    range_kind("explode", "fails in every chunk but the first", _explode),
    range_kind("slow_timeout", "sleepy_sum with a 1 s budget", _sleep_then_sum, timeout_seconds=1),
    JobKind(name="flaky", description="chunks fail transiently, then succeed (retry policy)", Params=FlakyParams,
            split=_flaky_split, run_chunk=_flaky_chunk, combine=_flaky_combine,
            retry=RetryPolicy(transient=(ConnectionError,), max_attempts=3, backoff_seconds=0.2,
                              jitter_seconds=0.05)),
    JobKind(name="big_result", description="a result of `size` characters (MAX_RESULT_BYTES)", Params=BigParams,
            split=lambda params, chunks, ctx: [{"size": params.size}], run_chunk=lambda chunk, ctx: chunk["size"],
            combine=lambda outputs, ctx: "x" * outputs[0], max_chunks=1),
    JobKind(name="slow_combine", description="a combine that outlasts the kind's 3 s budget", Params=BigParams,
            split=lambda params, chunks, ctx: [{"size": params.size}], run_chunk=lambda chunk, ctx: chunk["size"],
            combine=lambda outputs, ctx: time.sleep(6), timeout_seconds=3, max_chunks=1),
    JobKind(name="counted_sum", description="sleepy_sum that notes every run of a chunk", Params=RangeParams,
            split=lambda params, chunks, ctx: split_range(params.n, chunks), run_chunk=_counted_chunk,
            combine=lambda outputs, ctx: sum(outputs), combine_in_runner=True, timeout_seconds=600),
    range_kind("special_sum", "range_sum that runs only where the `special` resource is", sum_range,
               resources={"special": 1}, timeout_seconds=30),
]
