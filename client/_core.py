"""What the sync and the async client share: paths, retry decisions, the SSE wire format, and what
``wait`` does with each update. Nothing here does I/O; ``sync.py`` and ``aio.py`` do."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from client.errors import ChecksumMismatch, NetworkError, NotFound, error_from_response, retry_after_seconds
from client.models import Artifact, Job, JobChunks, JobEvent, JobPage, Kinds, Upload, User

log = logging.getLogger("client")

API = "/v1"
DEFAULT_TIMEOUT = 30.0
SSE_HEADERS = {"Accept": "text/event-stream"}
DOWNLOAD_HEADERS = {"Accept": "*/*"}
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

    def _attempts(self, call: Call | None = None) -> Attempts:
        max_retries = self.max_retries if call is None or call.max_retries is None else min(self.max_retries,
                                                                                             call.max_retries)
        return Attempts(max_retries, self.max_retry_wait, idempotent=call is None or call.idempotent)

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
    """One API call: the request, and what its JSON answer becomes. ``idempotent``: safe to send
    again after a transport error (else only errors before the request went out are retried);
    ``max_retries``: a cap below the client's (0 for a body that cannot be sent twice)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    options: dict = field(default_factory=dict)  # httpx's json=, params=, headers=, files=
    idempotent: bool = True
    max_retries: int | None = None


def submit_body(kind: str, n: int | None, chunks: int | None, params: dict | None, use_cache: bool | None,
                extra: dict | None, priority: str | None = None) -> dict:
    """With ``n``: the original body ``{"n", "chunks", "kind"}``, ``params`` merged into it as more
    body fields (as client 0.1 did). Else ``{"kind", "params", "chunks"}``, without ``chunks`` when
    None (the kind's default applies). ``use_cache`` and ``priority`` are sent when not None; ``extra``:
    more body fields."""
    if n is not None:
        body: dict[str, Any] = {"n": n, "chunks": chunks, "kind": kind, **(params or {})}
        if chunks is None:
            del body["chunks"]  # the server names the missing field
    else:
        body = {"kind": kind, "params": dict(params or {})}
        if chunks is not None:
            body["chunks"] = chunks
    if use_cache is not None:
        body["use_cache"] = use_cache
    if priority is not None:
        body["priority"] = priority
    return {**body, **(extra or {})}


def submit(kind: str, n: int | None, chunks: int | None, params: dict | None, demo: bool, key: str | None,
           use_cache: bool | None = None, extra: dict | None = None, priority: str | None = None) -> Call[Job]:
    """A fresh idempotency key when none is given: one per call, the same on each of its retries."""
    body = submit_body(kind, n, chunks, params, use_cache, extra, priority)
    asked = {"kind": kind, "n": n, "chunks": chunks} if n is not None else {
        "kind": kind, "n": _range_n(params), "params": dict(params or {}), "chunks": chunks}
    return Call("POST", jobs_path(demo), lambda answer: accepted_job(asked, answer),
                {"json": body, "headers": {"Idempotency-Key": key or str(uuid.uuid4())}})


def _range_n(params: dict | None) -> int | None:
    value = (params or {}).get("n")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def accepted_job(asked: dict, answer: dict) -> Job:
    """A ``JobAccepted`` answer (``job_id``, ``status``, ``cached``, ``result``) as a Job, with what was asked."""
    answer = dict(answer)
    answer.setdefault("is_cached", answer.pop("cached", False))
    return Job.from_dict({**asked, **answer})


def retry(job_id: str) -> Call[Job]:
    """Not idempotent (each call starts a new job): a transport error is retried only if the request
    never went out."""
    asked = {"kind": "", "retry_of": job_id}  # the kind is not in the answer ("": unknown)
    return Call("POST", job_path(job_id, suffix="/retry"), lambda answer: accepted_job(asked, answer),
                idempotent=False)


def get(job_id: str, demo: bool) -> Call[Job]:
    return Call("GET", job_path(job_id, demo), Job.from_dict)


def list_jobs(status: str | None, limit: int, offset: int) -> Call[JobPage]:
    params = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
    return Call("GET", jobs_path(), JobPage.from_dict, {"params": params})


def cancel(job_id: str) -> Call[Job]:
    return Call("DELETE", job_path(job_id), Job.from_dict)


def chunks(job_id: str, demo: bool) -> Call[JobChunks]:
    return Call("GET", job_path(job_id, demo, "/chunks"), JobChunks.from_dict)


def artifacts(job_id: str, demo: bool) -> Call[list[Artifact]]:
    return Call("GET", job_path(job_id, demo, "/artifacts"),
                lambda answer: [Artifact.from_dict(item) for item in answer["artifacts"]])


def artifact_path(job_id: str, name: str, demo: bool) -> str:
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"not an artifact name: {name!r}")
    return job_path(job_id, demo, "/artifacts/" + quote(name, safe="/"))


def upload_path(upload_id: str | None = None) -> str:
    if upload_id is None:
        return f"{API}/uploads"
    if not upload_id or "/" in upload_id:
        raise ValueError(f"not an upload id: {upload_id!r}")
    return f"{API}/uploads/{upload_id}"


def upload(source: UploadSource) -> Call[Upload]:
    """A file that cannot be rewound is sent once: no retries. Each retry sends the whole file again
    (httpx rewinds it), so a transport error is retried only if the request never went out."""
    return Call("POST", upload_path(), Upload.from_dict, {"files": source.files()}, idempotent=False,
                max_retries=None if source.rewindable else 0)


def upload_info(upload_id: str) -> Call[Upload]:
    return Call("GET", upload_path(upload_id), Upload.from_dict)


def delete_upload(upload_id: str) -> Call[None]:
    return Call("DELETE", upload_path(upload_id), lambda answer: None)


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

    def __init__(self, max_retries: int, max_wait: float, *, idempotent: bool = True):
        self.max_retries, self.max_wait, self.idempotent = max_retries, max_wait, idempotent
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
        """Seconds to wait before retrying after ``error``, or raise it as a NetworkError. A call that
        is not idempotent is retried only after errors that mean the request never went out."""
        if self.retries >= self.max_retries or not (self.idempotent or isinstance(error, NOT_SENT)):
            raise NetworkError(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__) from error
        try:
            request: httpx.Request | None = error.request
        except RuntimeError:  # httpx raises when the error was made without its request
            request = None
        return self._next(0.5 * 2 ** self.retries, type(error).__name__, request)


# Transport errors raised before any of the request was sent: safe to retry any call.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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


# -- uploads and downloads ------------------------------------------------------------------------

FileArg = str | os.PathLike | IO[bytes]


class UploadSource:
    """The file ``upload`` sends: a path (opened here and closed by ``close``) or an open binary file
    (left open); ``close`` when done. httpx streams it in 64 KiB pieces (never read whole) and rewinds it for each try."""

    def __init__(self, file: FileArg, filename: str | None, content_type: str | None):
        if isinstance(file, (str, os.PathLike)):
            self.file: IO[bytes] = open(file, "rb")  # noqa: SIM115 (closed by close())
            self._owned = True
            default = os.path.basename(os.fspath(file))
        else:
            if isinstance(file, (bytes, bytearray, memoryview)) or not hasattr(file, "read"):
                raise TypeError("upload takes a path or a binary file object (e.g. open(path, 'rb'), io.BytesIO)")
            self.file, self._owned = file, False
            name = getattr(file, "name", None)
            default = os.path.basename(name) if isinstance(name, str) else ""
        self.filename = filename or default or "upload"
        self.content_type = content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        try:
            self.rewindable = bool(self.file.seekable())
        except (AttributeError, ValueError):
            self.rewindable = False

    def files(self) -> dict:
        # httpx takes a file's length from fstat (0 for a pipe) or seek/tell: a file that cannot seek
        # goes as one with neither, so it is sent chunked, with no length to get wrong
        file = self.file if self.rewindable else _Unsized(self.file)
        return {"file": (self.filename, file, self.content_type)}

    def close(self) -> None:
        if self._owned:
            self.file.close()


class _Unsized:
    """A file seen through ``read`` alone."""

    def __init__(self, file: IO[bytes]):
        self._file = file

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)


class DownloadSink:
    """Where ``download`` writes an artifact, checking its size and sha256 against the listing.

    A path is written through a temporary file beside it, renamed into place only once the checksum
    matches (a mismatch or an error leaves no file behind). A file object is written in place (a
    mismatch raises, but the bytes written stay); a seekable one is rewound for a retry."""

    def __init__(self, artifact: Artifact, dest: FileArg):
        self.artifact = artifact
        self.path: Path | None = None
        self._temp: IO[bytes] | None = None
        if isinstance(dest, (str, os.PathLike)):
            self.path = Path(dest)
            if self.path.is_dir():
                self.path = self.path / artifact.name.rsplit("/", 1)[-1]
            self.file: IO[bytes] | None = None
            self._start: int | None = 0
        else:
            if not hasattr(dest, "write"):
                raise TypeError("download writes to a path or a binary file object")
            self.file = dest
            try:
                self._start = dest.tell() if dest.seekable() else None
            except (AttributeError, OSError, ValueError):
                self._start = None
        self.started = False
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def restartable(self) -> bool:
        """Whether a broken transfer can start again from the first byte."""
        return not self.started or self._start is not None

    def begin(self) -> None:
        """Before each try: a fresh temporary file, or the file object rewound to where it was."""
        if self.path is not None and self._temp is None:
            self._temp = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by finish() or abort())
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part", delete=False)
            self.file = self._temp
        elif self.started:
            assert self.file is not None and self._start is not None
            self.file.seek(self._start)
            self.file.truncate()
        self.started = True
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self.file is not None
        self.file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def finish(self) -> Artifact:
        """Checks the bytes against the listing: raises ChecksumMismatch (and drops a temporary file) if
        they differ; else moves the temporary file into place."""
        expected, actual = self.artifact.sha256, self._hash.hexdigest()
        if (expected and actual != expected.lower()) or self.size != self.artifact.size:
            self.abort()
            raise ChecksumMismatch(
                f"Artifact {self.artifact.name!r} arrived corrupted: {self.size} bytes with sha256 {actual}, "
                f"the listing says {self.artifact.size} bytes with sha256 {expected}.",
                name=self.artifact.name, expected=expected, actual=actual, size=self.size)
        if self._temp is not None and self.path is not None:
            self._temp.close()
            os.replace(self._temp.name, self.path)
            self._temp = None
        elif self.file is not None:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                self.file.flush()
        return self.artifact

    def abort(self) -> None:
        """Removes the temporary file, if any."""
        if self._temp is not None:
            self._temp.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp.name)
            self._temp = None


def download_broke(sink: DownloadSink, attempts: Attempts, error: httpx.TransportError) -> float:
    """Seconds to wait before downloading again after ``error``, or raise it as a NetworkError (when
    the destination cannot be rewound, or after the last retry)."""
    if not sink.restartable:
        raise NetworkError(f"The download of {sink.artifact.name!r} broke ({type(error).__name__}) and "
                           "cannot start again: the destination file cannot be rewound.") from error
    return attempts.after_error(error)


def find_artifact(listing: list[Artifact], job_id: str, name: str) -> Artifact:
    for artifact in listing:
        if artifact.name == name:
            return artifact
    names = ", ".join(a.name for a in listing) or "none"
    raise NotFound(f"Job {job_id} has no artifact {name!r} (it has: {names}).", 404)
