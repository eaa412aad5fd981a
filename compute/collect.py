"""Gathering a job's chunk results as they finish (plain asyncio: tested without Ray).

Finished futures arrive through a queue: ``asyncio.wait`` over the pending set would cost O(chunks)
per wake-up, O(chunks²) per job. Progress is handed on in batches, at most every ``interval``
seconds, so a big job costs a few dozen Redis writes rather than one per chunk; a job done within
the first interval needs none (its final write records every chunk).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Mapping

from ray.exceptions import RayTaskError

from compute.kinds import ChunkSpec
from compute.records import ChunkFact


class JobFailed(Exception):
    """The job cannot complete; the message is the ``detail`` its owner reads."""


def describe_chunk_error(spec: ChunkSpec, exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if type(cause).__name__ == "ChunkFailed":  # compute.tasks: the message already names the error
        text = message
    else:
        text = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
    where = f" (range {spec.start}..{spec.end})" if spec.start is not None and spec.end is not None else ""
    return f"Chunk {spec.index}{where} failed: {text}"


async def collect_chunks(
    pending: Mapping[asyncio.Future, ChunkSpec],
    facts: dict[int, ChunkFact],
    *,
    timeout: float,
    interval: float,
    on_batch: Callable[[list[ChunkFact]], None] = lambda batch: None,
    on_progress: Callable[[list[ChunkFact]], None] = lambda unreported: None,
) -> None:
    """Wait for every future (each resolves to ``ChunkFact`` fields), filling ``facts`` as they come.

    ``on_batch`` sees every batch that finished together (for metrics); ``on_progress`` gets what
    finished since its last call, at most every ``interval`` s and never for the last batch.
    Raises JobFailed for the first chunk that raised, or when ``timeout`` s have passed.
    """
    deadline = time.monotonic() + timeout
    finished: asyncio.Queue = asyncio.Queue()
    for future in pending:
        future.add_done_callback(finished.put_nowait)
    remaining = len(pending)
    unreported: list[ChunkFact] = []
    next_report = time.monotonic() + interval
    while remaining:
        now = time.monotonic()
        if now >= deadline:
            raise JobFailed(f"Job exceeded its time budget of {timeout:g} s and was stopped.")
        batch = []
        if finished.empty():
            wait = deadline - now if not unreported else max(0.0, min(deadline, next_report) - now)
            try:
                async with asyncio.timeout(wait):
                    batch.append(await finished.get())
            except TimeoutError:
                pass
        while not finished.empty():
            batch.append(finished.get_nowait())
        done = []
        for future in batch:
            remaining -= 1
            if future.exception() is not None:
                raise JobFailed(describe_chunk_error(pending[future], future.exception()))
            fact = ChunkFact(**future.result())
            facts[fact.index] = fact
            done.append(fact)
        if done:
            on_batch(done)
            unreported += done
        if unreported and remaining and time.monotonic() >= next_report:
            on_progress(unreported)
            unreported = []
            next_report = time.monotonic() + interval
