"""Accepting jobs (compute/submission.py) on a real Redis, with plain hand-off functions: fast tier.

The runner is not involved: ``accept`` takes the hand-off as a function, so the limits, races and
failure paths are tested here in milliseconds (the Ray-backed tests cover the real hand-off).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from compute.config import JobLimits
from compute.records import JobStatus
from compute.storage.jobs import JobStore
from compute.submission import ClusterUnavailable, InvalidInput, TooManyActiveJobs, accept, check, prepare
from tests.support.clients import run_async

LIMITS = JobLimits(max_n=1_000, max_chunks=10)


async def _nothing(job_id: str) -> None:
    return None


def test_check_names_the_first_bad_field_and_returns_the_kind():
    assert check("range_sum", 1_000, 10, LIMITS).name == "range_sum"
    for args, field in [((0, 1), "n"), ((1_001, 1), "n"), ((5, 0), "chunks"), ((5, 11), "chunks")]:
        with pytest.raises(InvalidInput) as problem:
            check("range_sum", *args, LIMITS)
        assert problem.value.field == field and "between 1 and" in problem.value.message
    with pytest.raises(InvalidInput) as problem:
        check("no_such_kind", 5, 1, LIMITS)
    assert problem.value.code == "unknown_kind" and "range_sum" in problem.value.message


def test_prepare_clamps_chunks_to_n():
    record = prepare("someone", "range_sum", 3, 10, LIMITS)
    assert (record.n, record.chunks, record.total_chunks, record.status) == (3, 10, 3, JobStatus.pending)


def test_active_limit_holds_under_concurrent_submissions(redis_url):
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    handed: list[str] = []

    async def hand_off(job_id: str) -> None:
        handed.append(job_id)

    async def scenario():
        store = JobStore(redis_url, key_prefix=f"t-{uuid.uuid4().hex[:6]}:")
        records = [prepare(owner, "range_sum", 10, 2, LIMITS) for _ in range(12)]
        outcomes = await asyncio.gather(
            *[accept(store, hand_off, r, index_owner=True, max_active=3) for r in records], return_exceptions=True)
        active = await store.owner_active_count(owner)
        await store.close()
        return outcomes, active

    outcomes, active = run_async(lambda: scenario())
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(accepted) == 3 == active == len(handed) and {o.job_id for o in accepted} == set(handed)
    assert all(isinstance(o, TooManyActiveJobs) for o in outcomes if isinstance(o, BaseException))


def test_unreachable_cluster_fails_the_job_visibly(redis_url):
    async def broken(job_id: str) -> None:
        raise ConnectionError("no cluster")

    async def scenario():
        store = JobStore(redis_url, key_prefix=f"t-{uuid.uuid4().hex[:6]}:")
        record = prepare(f"o-{uuid.uuid4().hex[:8]}", "range_sum", 10, 2, LIMITS)
        with pytest.raises(ClusterUnavailable):
            await accept(store, broken, record, index_owner=True, max_active=3)
        stored = await store.get_job(record.job_id)
        active = await store.owner_active_count(record.owner)
        await store.close()
        return stored, active

    stored, active = run_async(lambda: scenario())
    assert stored.status is JobStatus.failed and "could not accept" in stored.detail
    assert active == 0  # a failed hand-off frees its slot


def test_slow_runner_does_not_refuse_and_still_gets_the_job(redis_url):
    delivered = asyncio.Event

    async def scenario():
        got = delivered()

        async def slow(job_id: str) -> None:
            await asyncio.sleep(0.3)
            got.set()

        store = JobStore(redis_url, key_prefix=f"t-{uuid.uuid4().hex[:6]}:")
        record = prepare(f"o-{uuid.uuid4().hex[:8]}", "range_sum", 10, 2, LIMITS)
        await accept(store, slow, record, index_owner=True, timeout=0.05)  # returns before the hand-off
        pending = (await store.get_job(record.job_id)).status
        await asyncio.wait_for(got.wait(), 5)  # ...which completes in the background
        await store.close()
        return pending

    assert run_async(lambda: scenario()) is JobStatus.pending
