"""The service's answers as plain dataclasses.

Each is built from the JSON the server sends with ``from_dict``, which keeps only the fields the
dataclass knows: a newer server may add fields without breaking an older client. Integers stay
exact (``result`` may exceed 64 bits) and timestamps become timezone-aware datetimes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="_FromDict")

TERMINAL = frozenset({"completed", "failed", "cancelled"})


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as the server writes it (``...Z`` or ``...+00:00``), or None."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    if text.endswith(("Z", "z")):  # datetime.fromisoformat takes "Z" only from Python 3.11 on
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


class _FromDict:
    _times: ClassVar[tuple[str, ...]] = ()  # fields holding timestamps
    _lists: ClassVar[dict[str, type]] = {}  # fields holding lists of another of these classes

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        values = {key: value for key, value in data.items() if key in known}
        for name in cls._times:
            if name in values:
                values[name] = parse_time(values[name])
        for name, item_class in cls._lists.items():
            if name in values:
                values[name] = [item_class.from_dict(item) for item in values[name]]
        return cls(**values)


@dataclass
class Job(_FromDict):
    """A job as ``GET /v1/jobs/{id}`` returns it. ``submit`` fills in what the server accepted
    (``job_id``, ``status``) and what was asked (``kind``, ``n``); the rest comes with ``get``/``wait``."""

    _times: ClassVar[tuple[str, ...]] = ("created_at", "started_at", "completed_at")

    job_id: str
    status: str
    kind: str = "range_sum"
    n: int = 0
    progress: float = 0.0
    completed_chunks: int = 0
    total_chunks: int | None = None
    result: int | None = None
    detail: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None

    @property
    def finished(self) -> bool:
        """Completed, failed or cancelled: the job will not change any more."""
        return self.status in TERMINAL


@dataclass
class JobPage(_FromDict):
    """One page of ``list``: your jobs, newest first, and how many there are in all."""

    _lists: ClassVar[dict[str, type]] = {"items": Job}

    items: list[Job]
    total: int
    limit: int = 20
    offset: int = 0


@dataclass
class JobEvent:
    """One update from a job's live stream: ``event`` is ``progress`` or ``done`` (the last one)."""

    event: str
    job: Job


@dataclass
class Chunk(_FromDict):
    """Where and when one chunk ran (its Ray node and worker process)."""

    _times: ClassVar[tuple[str, ...]] = ("started_at", "ended_at")

    index: int
    start: int
    end: int
    status: str
    result: int | None = None
    node_id: str | None = None
    worker_pid: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None


@dataclass
class JobChunks(_FromDict):
    """``chunks``: the facts of each chunk of one job."""

    _lists: ClassVar[dict[str, type]] = {"chunks": Chunk}
    job_id: str
    status: str
    total_chunks: int
    chunks: list[Chunk] = field(default_factory=list)


@dataclass
class Kind(_FromDict):
    name: str
    description: str = ""
    timeout_seconds: float | None = None


@dataclass
class Kinds(_FromDict):
    """``GET /v1/kinds``: the job kinds and the limits the server enforces (``limits["demo"]["max_n"]``...)."""

    _lists: ClassVar[dict[str, type]] = {"kinds": Kind}

    kinds: list[Kind]
    limits: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [kind.name for kind in self.kinds]


@dataclass
class User(_FromDict):
    """``GET /v1/me``: who the token belongs to."""

    _times: ClassVar[tuple[str, ...]] = ("created_at",)

    user_id: str
    email: str | None = None
    created_at: datetime | None = None
