"""An example job kind: estimate pi by throwing random points at a square (README: "Add your own
job kind"). Load it with ``EXTRA_JOB_KIND_MODULES=examples.kinds.monte_carlo_pi make run``.

Each chunk throws its share of the points with its own seeded generator, so the same params always
give the same estimate (``deterministic``: a repeat may be answered from the result cache).
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from compute.kinds import JobKind, RetryPolicy

BATCH = 1_000_000  # points per numpy batch: memory stays small, progress is reported between batches


class Params(BaseModel):
    """The job's inputs: validated by the service, shown in /docs and in the web UI's form."""

    model_config = ConfigDict(extra="forbid")

    samples: StrictInt = Field(10_000_000, ge=1, le=10_000_000_000, description="How many random points to throw.")
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1, description="Seed of the random generators (same seed, same result).")


def split(params: Params, chunks: int, ctx) -> list[dict]:
    """One input per chunk (JSON): a range of sample numbers, shown as the chunk's start/end."""
    chunks = min(chunks, params.samples)
    size, extra = divmod(params.samples, chunks)
    inputs, start = [], 0
    for index in range(chunks):
        count = size + (index < extra)
        inputs.append({"start": start, "end": start + count - 1, "seed": params.seed})
        start += count
    return inputs


def run_chunk(chunk: dict, ctx) -> dict:
    """Runs in a Ray task: count the points inside the quarter circle; report progress as it goes."""
    rng = np.random.default_rng([chunk["seed"], chunk["start"]])
    total = chunk["end"] - chunk["start"] + 1
    inside = done = 0
    while done < total:
        batch = min(BATCH, total - done)
        x, y = rng.random(batch), rng.random(batch)
        inside += int(np.count_nonzero(x * x + y * y <= 1.0))
        done += batch
        ctx.progress(done / total)
    return {"inside": inside, "samples": total}


def combine(outputs: list[dict], ctx) -> dict:
    """The job's result (any JSON value): the chunks' outputs, in chunk order, added up."""
    inside = sum(o["inside"] for o in outputs)
    samples = sum(o["samples"] for o in outputs)
    return {"pi": 4 * inside / samples, "inside": inside, "samples": samples}


KIND = JobKind(
    name="monte_carlo_pi",
    description="Estimate pi from random points (an example kind: examples/kinds/monte_carlo_pi.py).",
    Params=Params,
    split=split,
    run_chunk=run_chunk,
    combine=combine,
    num_cpus=1,  # Ray resources of each chunk task (num_gpus, memory, resources={...} too)
    retry=RetryPolicy(transient=(MemoryError,), max_attempts=2),  # which of its own errors to retry
    timeout_seconds=600,
    deterministic=True,
    default_chunks=8,
    demo=True,  # anonymous demo jobs may run it, with at most 50 million samples
    demo_max={"samples": 50_000_000},
)
