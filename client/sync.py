"""The blocking client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TypeVar

import httpx

from client import _core
from client._core import Call, ClientBase, ProgressCallback
from client.errors import ApiError, NetworkError, RateLimited, ServerUnavailable, error_from_response
from client.models import Artifact, Job, JobChunks, JobEvent, JobPage, Kinds, Upload, User

T = TypeVar("T")


class Client(ClientBase):
    """A client of the Ray Jobs HTTP API (``/v1``); a context manager.

    ``Client(base_url, token=None, *, timeout=30.0, transport=None, max_retries=3, max_retry_wait=60.0,
    poll_interval=0.5)``

    ``token``: a JWT from ``/v1/auth/login`` or an API token (``rjt_...``); demo jobs need none.
    ``transport``: an ``httpx.HTTPTransport`` (e.g. ``HTTPTransport(local_address=...)``).
    ``max_retries`` / ``max_retry_wait``: a 429 or 503 is retried after its ``Retry-After`` (waiting at
    most ``max_retry_wait`` s), a transport error after 0.5 s, 1 s, 2 s...; every call is safe to
    repeat (submit sends the same idempotency key on each try). ``poll_interval``: for ``wait`` when
    the event stream is not available. Errors are raised as ``client.errors.ApiError`` subclasses.
    """

    _http_class = httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        while True:
            try:
                response = self._http.request(call.method, call.path, **call.options)
            except httpx.TransportError as error:
                wait = attempts.after_error(error)
            else:
                if response.is_success:
                    return _core.answer(call, response)
                wait = attempts.after_response(response)
            time.sleep(wait)

    def submit(self, kind: str = "range_sum", *, n: int | None = None, chunks: int | None = None,
               params: dict | None = None, demo: bool = False, use_cache: bool | None = None,
               idempotency_key: str | None = None, extra: dict | None = None, priority: str | None = None) -> Job:
        """Start a job; returns it as accepted (``job_id``, ``status`` "pending", ``kind``, ``params``,
        ``chunks``, ``n``; a job answered from the result cache is already "completed", with its result).

        ``submit("mandelbrot", params={"width": 64, "height": 48}, chunks=4)`` sends the body
        ``{"kind", "params", "chunks"}`` (``chunks`` left out when None: the kind's default); ``GET
        /v1/kinds`` (``kinds()``) describes each kind's params. With ``n`` it sends the original body
        ``{"n", "chunks", "kind"}`` of the range kinds, and ``params`` are merged into that body as
        more fields (as in client 0.1). ``use_cache``: False always computes afresh (sent only when
        given). ``priority``: "high", "normal" (the server's default) or "low". ``extra``: more top-level body fields. Every retry of this call sends the same
        ``idempotency_key`` (a new uuid4 per call by default), so a retried submit never starts a
        second job. ``demo``: a demo job (no token needed; small limits; no upload kinds)."""
        return self._run(_core.submit(kind, n, chunks, params, demo, idempotency_key, use_cache, extra, priority))

    def get(self, job_id: str, *, demo: bool = False) -> Job:
        """The job's current state."""
        return self._run(_core.get(job_id, demo))

    def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> JobPage:
        """Your jobs, newest first (``status``: only those in that status)."""
        return self._run(_core.list_jobs(status, limit, offset))

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending or running job; a finished one raises Conflict."""
        return self._run(_core.cancel(job_id))

    def chunks(self, job_id: str, *, demo: bool = False) -> JobChunks:
        """Where and when each chunk ran."""
        return self._run(_core.chunks(job_id, demo))

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again as a new job (its ``retry_of`` is ``job_id``) that reuses
        the chunks that had completed (only the missing ones run). Returns the new job as ``get`` reads
        it just after (kind, params, the reused chunks already counted in ``completed_chunks``), or as
        accepted (``job_id``, ``status``, ``retry_of``) if that read fails. Other jobs raise Conflict."""
        accepted = self._run(_core.retry(job_id))
        try:
            return self.get(accepted.job_id)
        except ApiError:
            return accepted

    def artifacts(self, job_id: str, *, demo: bool = False) -> list[Artifact]:
        """The files the job wrote (name, size, content type, sha256), sorted by name."""
        return self._run(_core.artifacts(job_id, demo))

    def download(self, job_id: str, name: str, dest: _core.FileArg, *, demo: bool = False) -> Artifact:
        """Stream the job's artifact ``name`` to ``dest`` (a path, a folder, or a binary file object) and
        check it against the listing's size and sha256: ChecksumMismatch if they differ (a path is then
        left untouched: the bytes go to a temporary file beside it, moved into place once they check
        out). NotFound if the job has no such artifact. Returns the artifact's listing entry."""
        path = _core.artifact_path(job_id, name, demo)
        artifact = _core.find_artifact(self.artifacts(job_id, demo=demo), job_id, name)
        sink = _core.DownloadSink(artifact, dest)
        attempts = self._attempts()
        try:
            while True:
                try:
                    with self._http.stream("GET", path, headers=_core.DOWNLOAD_HEADERS) as response:
                        if response.is_success:
                            sink.begin()
                            for data in response.iter_bytes():
                                sink.write(data)
                            return sink.finish()
                        response.read()
                        wait = attempts.after_response(response)
                except httpx.TransportError as error:
                    wait = _core.download_broke(sink, attempts, error)
                time.sleep(wait)
        finally:
            sink.abort()

    def upload(self, file: _core.FileArg, filename: str | None = None, content_type: str | None = None) -> Upload:
        """Upload a file (a path, or a binary file object, sent from its start) for a job's params
        (``upload_id``); it is streamed, never read whole into memory. ``filename`` defaults to the
        file's name, ``content_type`` to a guess from it. Over the server's cap: TooLarge (413)."""
        with contextlib.closing(_core.UploadSource(file, filename, content_type)) as source:
            return self._run(_core.upload(source))

    def upload_info(self, upload_id: str) -> Upload:
        """One of your uploads; another user's, or a deleted one, raises NotFound."""
        return self._run(_core.upload_info(upload_id))

    def delete_upload(self, upload_id: str) -> None:
        """Delete one of your uploads."""
        self._run(_core.delete_upload(upload_id))

    def kinds(self) -> Kinds:
        """The job kinds and the server's limits."""
        return self._run(_core.kinds())

    def me(self) -> User:
        """Who the token belongs to."""
        return self._run(_core.me())

    def _events(self, job_id: str, demo: bool) -> Iterator[JobEvent | None]:
        """The job's SSE updates as they come, None per heartbeat or other event; ends after ``done``."""
        try:
            with self._http.stream("GET", _core.events_path(job_id, demo), headers=_core.SSE_HEADERS) as response:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                for event in _core.job_events(response.iter_lines(), _core.SseParser()):
                    yield event
                    if event is not None and event.event == "done":
                        return
        except httpx.TransportError as error:
            raise _core.stream_broke(error) from error
        raise _core.stream_broke()

    def stream(self, job_id: str, *, demo: bool = False) -> Iterator[JobEvent]:
        """The job's live updates (``GET /v1/jobs/{id}/events``): ``progress`` events, then one ``done``
        with the final job. Raises NetworkError if the stream breaks before ``done``."""
        with contextlib.closing(self._events(job_id, demo)) as events:
            for event in events:
                if event is not None:
                    yield event

    def wait(self, job_id: str, timeout: float | None = None, progress: ProgressCallback | None = None, *,
             demo: bool = False) -> Job:
        """The job once it has finished (completed, failed or cancelled: check ``status``).

        Follows the event stream, and polls ``get`` if the stream breaks. ``progress`` is called with
        the job at each change of status or completed chunks, the final state included. Raises
        TimeoutError after ``timeout`` seconds (checked at each update or heartbeat, every 5 s)."""
        follow = self._follow(job_id, timeout, progress)
        try:
            with contextlib.closing(self._events(job_id, demo)) as events:
                for event in events:
                    if finished := follow.event(event):
                        return finished
        except (NetworkError, ServerUnavailable, RateLimited) as error:
            follow.stream_broke(error)
        while not (finished := follow.update(self.get(job_id, demo=demo))):
            time.sleep(follow.next_poll())
        return finished
