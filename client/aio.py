"""The asyncio client: ``Client``'s methods as coroutines (``stream`` is an async iterator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

import httpx

from client import _core
from client._core import Call, ClientBase, ProgressCallback
from client.errors import ApiError, NetworkError, RateLimited, ServerUnavailable, error_from_response
from client.models import Artifact, Job, JobChunks, JobEvent, JobPage, Kinds, Upload, User

T = TypeVar("T")


class AsyncClient(ClientBase):
    """``Client`` for asyncio, on ``httpx.AsyncClient`` (``transport``: an ``httpx.AsyncHTTPTransport``);
    an async context manager. The same arguments, methods, retries and errors as ``Client``."""

    _http_class = httpx.AsyncClient

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        while True:
            try:
                response = await self._http.request(call.method, call.path, **call.options)
            except httpx.TransportError as error:
                wait = attempts.after_error(error)
            else:
                if response.is_success:
                    return _core.answer(call, response)
                wait = attempts.after_response(response)
            await asyncio.sleep(wait)

    async def submit(self, kind: str = "range_sum", *, n: int | None = None, chunks: int | None = None,
                     params: dict | None = None, demo: bool = False, use_cache: bool | None = None,
                     idempotency_key: str | None = None, extra: dict | None = None, priority: str | None = None) -> Job:
        """See ``Client.submit``."""
        return await self._run(_core.submit(kind, n, chunks, params, demo, idempotency_key, use_cache, extra, priority))

    async def get(self, job_id: str, *, demo: bool = False) -> Job:
        return await self._run(_core.get(job_id, demo))

    async def list(self, status: str | None = None, limit: int = 20, offset: int = 0) -> JobPage:
        return await self._run(_core.list_jobs(status, limit, offset))

    async def cancel(self, job_id: str) -> Job:
        return await self._run(_core.cancel(job_id))

    async def chunks(self, job_id: str, *, demo: bool = False) -> JobChunks:
        return await self._run(_core.chunks(job_id, demo))

    async def retry(self, job_id: str) -> Job:
        """See ``Client.retry``."""
        accepted = await self._run(_core.retry(job_id))
        try:
            return await self.get(accepted.job_id)
        except ApiError:
            return accepted

    async def artifacts(self, job_id: str, *, demo: bool = False) -> list[Artifact]:
        return await self._run(_core.artifacts(job_id, demo))

    async def download(self, job_id: str, name: str, dest: _core.FileArg, *, demo: bool = False) -> Artifact:
        """See ``Client.download`` (the file is written from the event loop, 64 KiB at a time)."""
        path = _core.artifact_path(job_id, name, demo)
        artifact = _core.find_artifact(await self.artifacts(job_id, demo=demo), job_id, name)
        sink = _core.DownloadSink(artifact, dest)
        attempts = self._attempts()
        try:
            while True:
                try:
                    async with self._http.stream("GET", path, headers=_core.DOWNLOAD_HEADERS) as response:
                        if response.is_success:
                            sink.begin()
                            async for data in response.aiter_bytes():
                                sink.write(data)
                            return sink.finish()
                        await response.aread()
                        wait = attempts.after_response(response)
                except httpx.TransportError as error:
                    wait = _core.download_broke(sink, attempts, error)
                await asyncio.sleep(wait)
        finally:
            sink.abort()

    async def upload(self, file: _core.FileArg, filename: str | None = None,
                     content_type: str | None = None) -> Upload:
        """See ``Client.upload`` (the file is read from the event loop, 64 KiB at a time)."""
        with contextlib.closing(_core.UploadSource(file, filename, content_type)) as source:
            return await self._run(_core.upload(source))

    async def upload_info(self, upload_id: str) -> Upload:
        return await self._run(_core.upload_info(upload_id))

    async def delete_upload(self, upload_id: str) -> None:
        await self._run(_core.delete_upload(upload_id))

    async def kinds(self) -> Kinds:
        return await self._run(_core.kinds())

    async def me(self) -> User:
        return await self._run(_core.me())

    async def _events(self, job_id: str, demo: bool) -> AsyncIterator[JobEvent | None]:
        parser = _core.SseParser()
        try:
            async with self._http.stream("GET", _core.events_path(job_id, demo), headers=_core.SSE_HEADERS) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_from_response(response)
                async for line in response.aiter_lines():
                    item = parser.feed(line)
                    event = _core.job_event(*item) if item is not None else None
                    yield event
                    if event is not None and event.event == "done":
                        return
        except httpx.TransportError as error:
            raise _core.stream_broke(error) from error
        raise _core.stream_broke()

    async def stream(self, job_id: str, *, demo: bool = False) -> AsyncIterator[JobEvent]:
        """See ``Client.stream``: ``async for event in client.stream(job_id)``."""
        async with contextlib.aclosing(self._events(job_id, demo)) as events:
            async for event in events:
                if event is not None:
                    yield event

    async def wait(self, job_id: str, timeout: float | None = None, progress: ProgressCallback | None = None,
                   *, demo: bool = False) -> Job:
        """See ``Client.wait`` (``progress`` is a plain function, called from the event loop)."""
        follow = self._follow(job_id, timeout, progress)
        try:
            async with contextlib.aclosing(self._events(job_id, demo)) as events:
                async for event in events:
                    if finished := follow.event(event):
                        return finished
        except (NetworkError, ServerUnavailable, RateLimited) as error:
            follow.stream_broke(error)
        while not (finished := follow.update(await self.get(job_id, demo=demo))):
            await asyncio.sleep(follow.next_poll())
        return finished
