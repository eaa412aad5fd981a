"""Job kinds are plug-ins: one module each, registered by name.

A kind module defines a ``KIND`` object with ``name``, ``split``, ``run_chunk`` and
``combine`` (see :class:`JobKind`). Every module in this package is discovered
automatically; modules outside it can be added with ``EXTRA_JOB_KIND_MODULES``.
Adding a kind never touches the HTTP layer.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from compute.config import get_compute_settings


@dataclass(frozen=True)
class ChunkSpec:
    """One slice of a job: the inclusive integer range ``[start, end]``."""

    index: int
    start: int
    end: int


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    run_chunk: Callable[[int, int], int]
    combine: Callable[[Sequence[int]], int] = sum
    timeout_seconds: float = 600.0
    # The same inputs always give the same result, so a completed job may answer a repeat (RESULT_CACHE_SECONDS).
    deterministic: bool = False

    def split(self, n: int, chunks: int) -> list[ChunkSpec]:
        return split_range(n, chunks)

    def time_budget(self, settings=None) -> float:
        """A job's wall-clock budget in seconds: JOB_TIMEOUT_SECONDS when set, else this kind's own."""
        return (settings or get_compute_settings()).job_timeout_seconds or self.timeout_seconds


def split_range(n: int, chunks: int) -> list[ChunkSpec]:
    """Split 1..n into ``min(chunks, n)`` contiguous ranges whose sizes differ by at most one."""
    if n < 1 or chunks < 1:
        raise ValueError("n and chunks must be at least 1")
    chunks = min(chunks, n)
    base, extra = divmod(n, chunks)
    specs, start = [], 1
    for index in range(chunks):
        size = base + (1 if index < extra else 0)
        specs.append(ChunkSpec(index, start, start + size - 1))
        start += size
    return specs


class UnknownKind(KeyError):
    pass


@lru_cache
def registry() -> dict[str, JobKind]:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    extra = get_compute_settings().extra_job_kind_modules
    names += [name.strip() for name in extra.split(",") if name.strip()]
    kinds: dict[str, JobKind] = {}
    for module_name in names:
        module = importlib.import_module(module_name)
        for kind in getattr(module, "KINDS", [getattr(module, "KIND", None)]):
            if kind is not None:
                kinds[kind.name] = kind
    return kinds


def get_kind(name: str) -> JobKind:
    try:
        return registry()[name]
    except KeyError:
        raise UnknownKind(name) from None


def kind_names() -> list[str]:
    return sorted(registry())
