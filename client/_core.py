"""What the sync and the async client share: paths, retry decisions, the SSE wire format, and what
``wait`` does with each update. Nothing here does I/O; ``sync.py`` and ``aio.py`` do."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from client.errors import NetworkError, NotFound, error_from_response, retry_after_seconds
from client.models import Job, JobChunks, JobEvent, JobPage, Kinds, User

log = logging.getLogger("client")

API = "/v1"
DEFAULT_TIMEOUT = 30.0
SSE_HEADERS = {"Accept": "text/event-stream"}
ProgressCallback = Callable[[Job], Any]
Timeout = float | httpx.Timeout | None
T = TypeVar("T")


class ClientBase:
    """The constructor both clients share (its arguments: see ``Client``)."""

    _http_class: type  # httpx.Client or httpx.AsyncClient

    def __init__(self, base_url: str, token: str | None = None, *, timeout: Timeout = DEFAULT_TIMEOUT,
                 transport: Any = None, max_retries: int = 3, max_retry_wait: float = 60.0,
                 poll_interval: float = 0.5):
        if max_retries < 0 or max_retry_wait < 0 or poll_interval <= 0:
            raise ValueError("max_retries and max_retry_wait must be >= 0, poll_interval > 0")
        from client import __version__

        self.max_retries, self.max_retry_wait, self.poll_interval = max_retries, max_retry_wait, poll_interval
        headers = {"User-Agent": f"rayjobs-client/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = self._http_class(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                      transport=transport)

    def _attempts(self) -> Attempts:
        return Attempts(self.max_retries, self.max_retry_wait)

    def _follow(self, job_id: str, timeout: float | None, progress: ProgressCallback | None) -> Follow:
        return Follow(job_id, timeout, progress, self.poll_interval)


def jobs_path(demo: bool = False) -> str:
    return f"{API}/jobs/demo" if demo else f"{API}/jobs"


def job_path(job_id: str, demo: bool = False, suffix: str = "") -> str:
    if not job_id or "/" in job_id:
        raise ValueError(f"not a job id: {job_id!r}")
    return f"{jobs_path(demo)}/{job_id}{suffix}"


@dataclass
class Call(Generic[T]):
    """One API call: the request, and what its JSON answer becomes."""

    method: str
    path: str
    parse: Callable[[Any], T]
    options: dict = field(default_factory=dict)  # httpx's json=, params=, headers=


def submit(kind: str, n: int, chunks: int, params: dict | None, demo: bool, key: str | None) -> Call[Job]:
    """A fresh idempotency key when none is given: one per call, the same on each of its retries."""
    body = {"n": n, "chunks": chunks, "kind": kind, **(params or {})}
    return Call("POST", jobs_path(demo), lambda answer: Job.from_dict({"kind": kind, "n": n, **answer}),
                {"json": body, "headers": {"Idempotency-Key": key or str(uuid.uuid4())}})


def get(job_id: str, demo: bool) -> Call[Job]:
    return Call("GET", job_path(job_id, demo), Job.from_dict)


def list_jobs(status: str | None, limit: int, offset: int) -> Call[JobPage]:
    params = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
    return Call("GET", jobs_path(), JobPage.from_dict, {"params": params})


def cancel(job_id: str) -> Call[Job]:
    return Call("DELETE", job_path(job_id), Job.from_dict)


def chunks(job_id: str, demo: bool) -> Call[JobChunks]:
    return Call("GET", job_path(job_id, demo, "/chunks"), JobChunks.from_dict)


def kinds() -> Call[Kinds]:
    return Call("GET", f"{API}/kinds", Kinds.from_dict)


def me() -> Call[User]:
    return Call("GET", f"{API}/me", User.from_dict)


def events_path(job_id: str, demo: bool) -> str:
    return job_path(job_id, demo, "/events")


class Attempts:
    """One call's retries: after a 429 or 503 the server's ``Retry-After`` (at most ``max_wait``);
    after a transport error 0.5 s, 1 s, 2 s, ...; at most ``max_retries`` retries, then the error is
    raised. Every call the clients make is safe to repeat: reads, cancel, and submit, which sends the
    same idempotency key on each try."""

    def __init__(self, max_retries: int, max_wait: float):
        self.max_retries, self.max_wait = max_retries, max_wait
        self.retries = 0

    def _next(self, wait: float, why: str, request: httpx.Request | None) -> float:
        self.retries += 1
        wait = min(wait, self.max_wait)
        where = f"{request.method} {request.url.path}" if request is not None else "request"
        log.info("%s on %s; retry %d/%d in %.2f s", why, where, self.retries, self.max_retries, wait)
        return wait

    def after_response(self, response: httpx.Response) -> float:
        """Seconds to wait before retrying ``response`` (not a success), or raise its typed error."""
        wait = retry_after_seconds(response) if response.status_code in (429, 503) else None
        if wait is None or self.retries >= self.max_retries:
            raise error_from_response(response)
        return self._next(wait, f"HTTP {response.status_code}", response.request)

    def after_error(self, error: httpx.TransportError) -> float:
        """Seconds to wait before retrying after ``error``, or raise it as a NetworkError."""
        if self.retries >= self.max_retries:
            raise NetworkError(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__) from error
        try:
            request: httpx.Request | None = error.request
        except RuntimeError:  # httpx raises when the error was made without its request
            request = None
        return self._next(0.5 * 2 ** self.retries, type(error).__name__, request)


def answer(call: Call[T], response: httpx.Response) -> T:
    return call.parse(response.json() if response.content else None)


# -- Server-Sent Events -----------------------------------------------------------------------

KEEP_ALIVE = "keep-alive"


class SseParser:
    """Turns the lines of an event stream into ``(event, data)`` pairs (``data`` parsed as JSON,
    exact integers kept); a comment line (the server's heartbeat) gives ``("keep-alive", None)``."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line.startswith(":"):
            return KEEP_ALIVE, None
        if line == "":
            event, data = self._event, self._data
            self._event, self._data = None, []
            if event is None and not data:
                return None
            return event or "message", json.loads("\n".join(data)) if data else None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None  # `retry:`, `id:` and unknown fields: nothing to report


def job_event(event: str, data: Any) -> JobEvent | None:
    """A job's update from one SSE event, None for heartbeats and events about other things
    (``chunks``, ``resync``); an ``error`` event (the record is gone) raises NotFound."""
    if event in ("progress", "done"):
        return JobEvent(event, Job.from_dict(data))
    if event == "error":
        raise NotFound(data.get("detail", "Job not found.") if isinstance(data, dict) else "Job not found.", 404)
    return None


def job_events(lines: Iterable[str], parser: SseParser) -> Iterable[JobEvent | None]:
    for line in lines:
        item = parser.feed(line)
        if item is not None:
            yield job_event(*item)


def stream_broke(error: Exception | None = None) -> NetworkError:
    if error is None:
        return NetworkError("The event stream ended before the job finished.")
    return NetworkError(f"The event stream broke: {type(error).__name__}")


# -- wait ---------------------------------------------------------------------------------------

class Follow:
    """What ``wait`` does with each update of one job, from the stream or from polling: tells the
    progress callback about each change, keeps the deadline, paces the polls."""

    def __init__(self, job_id: str, timeout: float | None, progress: ProgressCallback | None,
                 poll_interval: float):
        self.job_id, self.progress, self.poll_interval = job_id, progress, poll_interval
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self._last: tuple | None = None

    def event(self, event: JobEvent | None) -> Job | None:
        """``update`` with a stream's event; a heartbeat only checks the deadline."""
        if event is None:
            self.check_time()
            return None
        return self.update(event.job)

    def update(self, job: Job) -> Job | None:
        """The job if it has finished; calls ``progress`` when its status or chunk count changed."""
        state = (job.status, job.completed_chunks)
        if state != self._last:
            self._last = state
            if self.progress is not None:
                self.progress(job)
        if job.finished:
            return job
        self.check_time()
        return None

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimeoutError(f"Job {self.job_id} did not finish within {self.timeout} s.")

    def stream_broke(self, error: Exception) -> None:
        self.check_time()
        log.info("event stream of job %s broke (%s); polling instead", self.job_id, error)

    def next_poll(self) -> float:
        """Seconds until the next poll (never past the deadline)."""
        self.check_time()
        if self.deadline is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self.deadline - time.monotonic()))
