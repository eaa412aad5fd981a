"""Job kinds used only by tests, loaded through the EXTRA_JOB_KIND_MODULES plug-in setting."""

import time

from compute.kinds import JobKind
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


KINDS = [
    JobKind(name="sleepy_sum", description="range_sum that takes 1 ms per number", run_chunk=_sleep_then_sum,
            timeout_seconds=120),
    JobKind(name="explode", description="fails in every chunk but the first", run_chunk=_explode),
    JobKind(name="slow_timeout", description="sleepy_sum with a 1 s budget", run_chunk=_sleep_then_sum,
            timeout_seconds=1),
]
