"""The runner's collection logic on plain asyncio futures (no Ray): fast tier."""

from __future__ import annotations

import asyncio
import time

import pytest

from compute.collect import JobFailed, collect_chunks, describe_chunk_error
from compute.kinds import ChunkSpec
from compute.records import ChunkFact
from tests.support.clients import run_async


def _fields(index: int, result: int) -> dict:
    now = time.time()
    return {"index": index, "start": index * 10 + 1, "end": index * 10 + 10, "status": "completed",
            "result": result, "node_id": "n", "worker_pid": 1, "started_at": now, "ended_at": now}


def _pending(count: int) -> dict[asyncio.Future, ChunkSpec]:
    loop = asyncio.get_running_loop()
    return {loop.create_future(): ChunkSpec(i, {"start": i * 10 + 1, "end": i * 10 + 10}) for i in range(count)}


def test_collects_every_chunk_and_reports_progress_in_batches():
    async def scenario():
        pending = _pending(6)
        facts: dict[int, ChunkFact] = {}
        batches, reports = [], []

        async def finish_slowly():
            for i, future in enumerate(pending):
                future.set_result(_fields(i, i * 100))
                await asyncio.sleep(0.03)

        feeder = asyncio.create_task(finish_slowly())
        await collect_chunks(pending, facts, timeout=10, interval=0.05,
                             on_batch=lambda b: batches.append([f.index for f in b]),
                             on_progress=lambda u: reports.append([f.index for f in u]))
        await feeder
        return facts, batches, reports

    facts, batches, reports = run_async(lambda: scenario())
    assert {i: f.result for i, f in facts.items()} == {i: i * 100 for i in range(6)}
    assert sorted(i for batch in batches for i in batch) == list(range(6))
    reported = [i for report in reports for i in report]
    assert reports and len(reported) == len(set(reported)) < 6  # batched, each once, never the last
    assert 5 not in reported


def test_a_failing_chunk_fails_the_job_naming_it():
    async def scenario():
        pending = _pending(3)
        futures = list(pending)
        futures[0].set_result(_fields(0, 1))
        futures[2].set_exception(ValueError("bad input\nsecond line"))
        facts: dict[int, ChunkFact] = {}
        with pytest.raises(JobFailed) as failure:
            await collect_chunks(pending, facts, timeout=10, interval=0.05)
        return str(failure.value), facts

    message, facts = run_async(lambda: scenario())
    assert message == "Chunk 2 (range 21..30) failed: ValueError: bad input"
    assert set(facts) <= {0}


def test_time_budget_stops_collection():
    async def scenario():
        pending = _pending(2)
        next(iter(pending)).set_result(_fields(0, 1))
        facts: dict[int, ChunkFact] = {}
        started = time.monotonic()
        with pytest.raises(JobFailed, match="time budget of 0.2 s"):
            await collect_chunks(pending, facts, timeout=0.2, interval=0.05)
        return time.monotonic() - started, facts

    elapsed, facts = run_async(lambda: scenario())
    assert 0.2 <= elapsed < 2
    assert list(facts) == [0]


def test_describe_chunk_error_without_a_message():
    assert describe_chunk_error(ChunkSpec(4, {"start": 1, "end": 9}), KeyError()) == "Chunk 4 (range 1..9) failed: KeyError"
    assert describe_chunk_error(ChunkSpec(2, {"rows": 3}), ValueError("bad")) == "Chunk 2 failed: ValueError: bad"
