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
from compute.submission import ClusterUnavailable, InvalidInput, JobRequest, TooManyActiveJobs, accept, check, prepare
from tests.support.clients import run_async

LIMITS = JobLimits(max_n=1_000, max_chunks=10)


async def _nothing(job_id: str) -> None:
    return None


def legacy(n: int, chunks: int, kind: str = "range_sum") -> JobRequest:
    return JobRequest(kind, {"n": n}, chunks, legacy=True)


def test_check_names_the_first_bad_field_and_returns_the_kind():
    kind, params = check(legacy(1_000, 10), LIMITS, "someone")
    assert kind.name == "range_sum" and params.n == 1_000
    for args, field, words in [((0, 1), "n", "between 1 and"), ((1_001, 1), "n", "between 1 and"),
                               ((5, 0), "chunks", "between 1 and"), ((5, 11), "chunks", "between 1 and")]:
        with pytest.raises(InvalidInput) as problem:
            check(legacy(*args), LIMITS, "someone")
        assert problem.value.field == field and words in problem.value.message
    with pytest.raises(InvalidInput) as problem:  # the kinded body names params' fields in full
        check(JobRequest("range_sum", {"n": 1_001}, 1), LIMITS, "someone")
    assert problem.value.field == "params.n"
    with pytest.raises(InvalidInput) as problem:
        check(JobRequest("range_sum", {"n": 5, "m": 1}, 1), LIMITS, "someone")
    assert problem.value.field == "params.m" and problem.value.code == "extra_forbidden"
    with pytest.raises(InvalidInput) as problem:
        check(legacy(5, 1, "no_such_kind"), LIMITS, "someone")
    assert problem.value.code == "unknown_kind" and "range_sum" in problem.value.message


def test_prepare_clamps_chunks_to_n_and_stores_the_inputs():
    job = prepare("someone", legacy(3, 10), LIMITS)
    record = job.record
    assert (record.n, record.chunks, record.total_chunks, record.status) == (3, 10, 3, JobStatus.pending)
    assert job.inputs == [{"start": 1, "end": 1}, {"start": 2, "end": 2}, {"start": 3, "end": 3}]


def test_active_limit_holds_under_concurrent_submissions(redis_url):
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    handed: list[str] = []

    async def hand_off(job_id: str) -> None:
        handed.append(job_id)

    async def scenario():
        store = JobStore(redis_url, key_prefix=f"t-{uuid.uuid4().hex[:6]}:")
        jobs = [prepare(owner, legacy(10, 2), LIMITS) for _ in range(12)]
        outcomes = await asyncio.gather(
            *[accept(store, hand_off, r, index_owner=True, max_active=3) for r in jobs], return_exceptions=True)
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
        job = prepare(f"o-{uuid.uuid4().hex[:8]}", legacy(10, 2), LIMITS)
        record = job.record
        with pytest.raises(ClusterUnavailable):
            await accept(store, broken, job, index_owner=True, max_active=3)
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
        job = prepare(f"o-{uuid.uuid4().hex[:8]}", legacy(10, 2), LIMITS)
        record = job.record
        await accept(store, slow, job, index_owner=True, timeout=0.05)  # returns before the hand-off
        pending = (await store.get_job(record.job_id)).status
        await asyncio.wait_for(got.wait(), 5)  # ...which completes in the background
        await store.close()
        return pending

    assert run_async(lambda: scenario()) is JobStatus.pending
