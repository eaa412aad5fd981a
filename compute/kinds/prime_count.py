"""``prime_count``: how many primes are <= n (pi(n)), a CPU-heavy kind.

Each chunk runs a segmented sieve of Eratosthenes over its own range, so chunks are
independent and the work is spread evenly.
"""

from math import isqrt

from compute.kinds import range_kind

_SEGMENT = 1 << 21


def _base_primes(limit: int) -> list[int]:
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for p in range(2, isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return [i for i, is_prime in enumerate(sieve) if is_prime]


def count_primes(start: int, end: int) -> int:
    """Number of primes p with start <= p <= end."""
    start = max(start, 2)
    if end < start:
        return 0
    primes = _base_primes(isqrt(end))
    count = 0
    for low in range(start, end + 1, _SEGMENT):
        high = min(low + _SEGMENT - 1, end)
        segment = bytearray([1]) * (high - low + 1)
        for p in primes:
            if p * p > high:
                break
            first = max(p * p, (low + p - 1) // p * p)
            if first <= high:
                segment[first - low :: p] = bytes(len(range(first, high + 1, p)))
        count += segment.count(1)
    return count


KIND = range_kind("prime_count", "Number of primes <= n (segmented sieve per chunk).", count_primes,
                  deterministic=True, timeout_seconds=1800.0)
