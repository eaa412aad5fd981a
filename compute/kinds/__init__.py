"""Job kinds are plug-ins: one module each, registered by name.

A kind module defines ``KIND`` (or ``KINDS``), a :class:`JobKind`: its name and description, its
inputs as a pydantic model (``Params``), and three functions:

- ``split(params, chunks, ctx)`` -> the chunks' inputs, a list of JSON values (by convention dicts
  with int ``start`` and ``end``: rows, bytes, items; the API shows them). It runs once, when the
  job is accepted, and the inputs are stored with the job; it should be cheap.
- ``run_chunk(chunk_input, ctx)`` -> a JSON value; runs in a Ray task with the kind's resources.
  ``ctx`` (``compute.kinds.context``) reports progress inside a long chunk and writes artifacts.
- ``combine(outputs, ctx)`` -> the job's result, a JSON value, from the outputs in chunk order.

Every module in this package is discovered automatically; modules outside it are added with
``EXTRA_JOB_KIND_MODULES``. Adding a kind never touches the HTTP layer: its params appear in the
API's schema and the web UI's form from ``Params``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Callable, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from compute.config import get_compute_settings


def _no_strings_or_booleans(value):
    if isinstance(value, (str, bool)):
        raise ValueError("must be a JSON integer, not a string or boolean")
    return value


# An integer as JSON Schema means it: 1000 and 1000.0 pass; "1000", true and 1000.5 do not.
JsonInt = Annotated[int, BeforeValidator(_no_strings_or_booleans)]

UPLOAD_MARK = "x-upload"
# A params field naming an upload (``POST /uploads``): the service checks it is the job owner's.
UploadId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$"),
                     Field(description="The `upload_id` of a file you uploaded (`POST /uploads`).",
                           json_schema_extra={UPLOAD_MARK: True})]


class InvalidParams(ValueError):
    """Raised by ``split`` for inputs the kind cannot use: a 422 naming ``params.<field>``."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class ChunkSpec:
    """One chunk of a job: its index and input."""

    index: int
    input: Any

    @property
    def start(self) -> Optional[int]:
        return self.input.get("start") if isinstance(self.input, dict) else None

    @property
    def end(self) -> Optional[int]:
        return self.input.get("end") if isinstance(self.input, dict) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How a chunk retries its kind's own exceptions (Ray itself retries only dead workers).

    An exception of a ``transient`` type is retried in the task after an exponential backoff with
    jitter (``backoff_seconds`` doubling up to ``max_backoff_seconds``, plus up to ``jitter_seconds``),
    up to ``max_attempts`` attempts in all; any other exception fails the job at once.
    """

    transient: tuple[type[BaseException], ...] = ()
    max_attempts: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    jitter_seconds: float = 0.5

    def retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(self.transient),  # () retries nothing
            stop=stop_after_attempt(max(1, self.max_attempts)),
            wait=wait_exponential_jitter(initial=self.backoff_seconds, max=self.max_backoff_seconds,
                                         jitter=self.jitter_seconds),
            reraise=True,
        )

    def describe(self) -> dict:
        return {"transient": [t.__name__ for t in self.transient],
                "max_attempts": self.max_attempts if self.transient else 1,
                "backoff_seconds": self.backoff_seconds, "max_backoff_seconds": self.max_backoff_seconds}


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    Params: type[BaseModel]
    split: Callable[..., list]
    run_chunk: Callable[..., Any]
    combine: Callable[..., Any]
    # Ray resources of each chunk task: a GPU kind lands only on nodes with a GPU, a kind asking for
    # a custom resource only where a node offers it.
    num_cpus: float = 1
    num_gpus: float = 0
    memory: Optional[int] = None  # bytes
    resources: dict[str, float] = field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float = 600.0
    # The same inputs always give the same result, so a completed job may answer a repeat (RESULT_CACHE_SECONDS).
    deterministic: bool = False
    default_chunks: int = 4
    max_chunks: Optional[int] = None  # the kind's own cap, below MAX_CHUNKS
    # A combine that only adds numbers runs in the runner; anything heavier runs as a Ray task.
    combine_in_runner: bool = False
    # Open to anonymous demo jobs (never a kind that reads uploads), with these params maxima for them
    # (the range kinds' n is DEMO_MAX_N), so nobody without an account can keep the cluster busy.
    demo: bool = False
    demo_max: dict[str, float] = field(default_factory=dict)

    def time_budget(self, settings=None) -> float:
        """A job's wall-clock budget in seconds: JOB_TIMEOUT_SECONDS when set, else this kind's own."""
        return (settings or get_compute_settings()).job_timeout_seconds or self.timeout_seconds

    def ray_options(self) -> dict:
        options: dict = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory:
            options["memory"] = self.memory
        if self.resources:
            options["resources"] = dict(self.resources)
        return options

    def resources_view(self) -> dict:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "memory": self.memory,
                "custom": dict(self.resources)}

    @property
    def upload_fields(self) -> list[str]:
        """The params fields that name an upload (``UploadId``)."""
        return [name for name, info in self.Params.model_fields.items()
                if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(UPLOAD_MARK)]


# -- the range kinds' shared shape: params {n}, chunks are integer ranges, results add up ---------


class RangeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # 1..MAX_N (DEMO_MAX_N for demo jobs) is checked by compute.submission, which knows the limits and
    # names them in its message; the schema shows the bounds.
    n: JsonInt = Field(description="Compute over the integers 1..n (at most MAX_N; DEMO_MAX_N for demo jobs).",
                       json_schema_extra={"minimum": 1})


def split_range(n: int, chunks: int) -> list[dict]:
    """Split 1..n into ``min(chunks, n)`` contiguous ranges whose sizes differ by at most one."""
    if n < 1 or chunks < 1:
        raise ValueError("n and chunks must be at least 1")
    chunks = min(chunks, n)
    base, extra = divmod(n, chunks)
    inputs, start = [], 1
    for index in range(chunks):
        size = base + (1 if index < extra else 0)
        inputs.append({"start": start, "end": start + size - 1})
        start += size
    return inputs


def range_kind(name: str, description: str, count: Callable[[int, int], int], **options) -> JobKind:
    """A kind over 1..n whose chunk computes ``count(start, end)`` and whose result is the sum."""
    return JobKind(
        name=name, description=description, Params=RangeParams,
        split=lambda params, chunks, ctx=None: split_range(params.n, chunks),
        run_chunk=lambda chunk, ctx=None: count(chunk["start"], chunk["end"]),
        combine=lambda outputs, ctx=None: sum(outputs),
        combine_in_runner=True, demo=True, **options,
    )


# -- the registry ------------------------------------------------------------------------------


class UnknownKind(KeyError):
    pass


@lru_cache
def registry() -> dict[str, JobKind]:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
             and m.name != "context"]
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
