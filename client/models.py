"""The service's answers as plain dataclasses.

Each is built from the JSON the server sends with ``from_dict``, which keeps only the fields the
dataclass knows: a newer server may add fields without breaking an older client. ``result`` is any
JSON value (an ``int`` for the range kinds, a ``dict`` for most others), integers stay exact (beyond
64 bits too) and timestamps become timezone-aware datetimes.
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
    (``job_id``, ``status``, and ``result`` when a cached job answered) and what was asked (``kind``,
    ``n``, ``params``, ``chunks``); the rest comes with ``get``/``wait``.

    ``n`` is the range kinds' n (``params["n"]``), None for other kinds. ``result`` is any JSON value
    (set once the job completed); files a job writes are its artifacts (``Client.artifacts``).
    ``retry_of``: the failed or cancelled job this one retries (``Client.retry``)."""

    _times: ClassVar[tuple[str, ...]] = ("created_at", "started_at", "completed_at")

    job_id: str
    status: str
    kind: str = "range_sum"
    n: int | None = None
    progress: float = 0.0
    completed_chunks: int = 0
    total_chunks: int | None = None
    result: Any = None
    detail: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    chunks: int | None = None
    retry_of: str | None = None
    is_cached: bool = False
    priority: str = "normal"
    queue_position: int | None = None  # while pending: its approximate place in the queue (1 = next)

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
class Attempt(_FromDict):
    """One try of a chunk (the kind's retry policy retries transient errors); ``error`` is None for
    the try that succeeded."""

    _times: ClassVar[tuple[str, ...]] = ("started_at", "ended_at")

    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None


@dataclass
class Chunk(_FromDict):
    """Where and when one chunk ran (its Ray node and worker process). ``start``/``end``: its range
    (numbers, rows, bytes, items), None for kinds whose chunks have none; ``result`` any JSON value;
    ``progress`` how far a running chunk is (0..1, as it reports it, else None); ``attempts`` every
    try, with its error."""

    _times: ClassVar[tuple[str, ...]] = ("started_at", "ended_at")
    _lists: ClassVar[dict[str, type]] = {"attempts": Attempt}

    index: int
    start: int | None
    end: int | None
    status: str
    result: Any = None
    node_id: str | None = None
    worker_pid: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    progress: float | None = None
    attempts: list[Attempt] = field(default_factory=list)


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
    """One job kind of ``GET /v1/kinds``: what its ``params`` are (``params_schema``, a JSON schema),
    its chunks (``default_chunks``; ``max_chunks`` its own cap, None: the server's), whether it reads
    an upload (``needs_upload``, the params fields naming one: ``upload_fields``), the Ray
    ``resources`` of its chunk tasks (``num_cpus``, ``num_gpus``, ``memory``, ``custom``), its
    ``retry`` policy (``transient``, ``max_attempts``, ``backoff_seconds``...), whether demo jobs may
    run it (``demo``, with the params maxima ``demo_max``) and whether it is ``deterministic``."""

    name: str
    description: str = ""
    timeout_seconds: float | None = None
    params_schema: dict[str, Any] = field(default_factory=dict)
    default_chunks: int | None = None
    max_chunks: int | None = None
    needs_upload: bool = False
    upload_fields: list[str] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    retry: dict[str, Any] = field(default_factory=dict)
    demo: bool = False
    demo_max: dict[str, Any] = field(default_factory=dict)
    deterministic: bool | None = None


@dataclass
class Kinds(_FromDict):
    """``GET /v1/kinds``: the job kinds and the limits the server enforces (``limits["demo"]["max_n"]``...)."""

    _lists: ClassVar[dict[str, type]] = {"kinds": Kind}

    kinds: list[Kind]
    limits: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [kind.name for kind in self.kinds]

    def get(self, name: str) -> Kind | None:
        """The kind called ``name``, or None."""
        return next((kind for kind in self.kinds if kind.name == name), None)


@dataclass
class User(_FromDict):
    """``GET /v1/me``: who the token belongs to."""

    _times: ClassVar[tuple[str, ...]] = ("created_at",)

    user_id: str
    email: str | None = None
    created_at: datetime | None = None


@dataclass
class Upload(_FromDict):
    """An uploaded file (``POST /v1/uploads``): name it in a job's params (e.g. ``word_count``'s
    ``upload_id``). Only its owner can use it."""

    _times: ClassVar[tuple[str, ...]] = ("created_at",)

    upload_id: str
    size: int
    sha256: str
    filename: str | None = None
    content_type: str | None = None
    created_at: datetime | None = None


@dataclass
class Artifact(_FromDict):
    """A file a job wrote (``GET /v1/jobs/{id}/artifacts``): ``url`` is its download path."""

    name: str
    size: int
    content_type: str = "application/octet-stream"
    sha256: str = ""
    url: str | None = None
