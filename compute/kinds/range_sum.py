"""``range_sum``: the sum of 1..n, the classic demo job.

Each chunk really adds its numbers (no closed form), so the work grows with its range.
"""

from compute.kinds import range_kind

_BLOCK = 1 << 20  # add in blocks so a cancel request can interrupt between them


def sum_range(start: int, end: int) -> int:
    total = 0
    for block_start in range(start, end + 1, _BLOCK):
        total += sum(range(block_start, min(block_start + _BLOCK, end + 1)))
    return total


KIND = range_kind("range_sum", "Sum of the integers 1..n.", sum_range, deterministic=True, timeout_seconds=600.0)
