"""Receiving an upload: a multipart/form-data body streamed into the artifact store, never held whole.

Starlette's ``request.form()`` spools every part before the handler runs (to memory, then to a
temporary file), so a 64 MiB upload would sit on the replica twice. Here the body is read as it
arrives (``request.stream()``) and fed to python-multipart's push parser; the ``file`` part's data
goes straight to ``ArtifactStore.begin_upload``'s writer. Parsing and writing run in a worker
thread, a batch of received blocks at a time (``BATCH_BYTES``), so the event loop never waits on the
store (a local disk, NFS or an object store). The part's bytes are counted as they come: past
``max_bytes`` the upload is deleted and the request answered 413 at once, whatever Content-Length
said (``RequestSizeLimitMiddleware`` has already refused a declared length over the cap).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import AsyncIterable, Optional

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from compute.artifacts import ArtifactStore, UploadInfo, UploadWriter

FILE_FIELD = "file"
# What a multipart body may add around its file: boundaries, part headers, small extra fields.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
BATCH_BYTES = 256 * 1024  # received bytes handed to the worker thread at once
MAX_FILENAME_LENGTH = 200
DEFAULT_FILENAME = "upload"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
MAX_PART_HEADER_BYTES = 8 * 1024
MAX_PART_HEADERS = 16
MAX_PARTS = 32


class UploadProblem(Exception):
    """An upload the service refuses: ``status`` (413, 415 or 422) and a message naming the problem."""

    def __init__(self, status: int, message: str, field: str = "body"):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def boundary_of(content_type: Optional[str]) -> bytes:
    """The multipart boundary of a Content-Type header; 415 for any other media type."""
    media_type, options = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise UploadProblem(415, "Send the file as multipart/form-data, in a part named 'file' "
                                 f"(got Content-Type {media_type.decode('latin-1') or 'none'!r}).")
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise UploadProblem(422, "The multipart/form-data Content-Type has no valid boundary parameter.")
    return boundary


def clean_filename(raw: Optional[str]) -> str:
    """A filename safe to store and show: its last path segment, no control or format characters,
    at most MAX_FILENAME_LENGTH characters (the extension kept), never empty."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        return DEFAULT_FILENAME
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[:MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


def clean_content_type(raw: Optional[str]) -> str:
    """The part's media type (lower case, parameters dropped), or application/octet-stream."""
    media_type = (raw or "").split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.match(media_type) else DEFAULT_CONTENT_TYPE


class MultipartUpload:
    """The push parser's state for one request: fed blocks of the body in a worker thread (one call at
    a time), it writes the ``file`` part to an UploadWriter and ignores any other part."""

    def __init__(self, store: ArtifactStore, owner: str, boundary: bytes, max_bytes: int):
        self.store, self.owner, self.max_bytes = store, owner, max_bytes
        self.writer: Optional[UploadWriter] = None
        self.finished = False  # the closing boundary was read
        self._headers: list[tuple[bytes, bytes]] = []
        self._field, self._value = b"", b""
        self._in_file = False
        self._file_seen = False
        self._parts = 0
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }, max_header_count=MAX_PART_HEADERS, max_header_size=MAX_PART_HEADER_BYTES)

    # -- parser callbacks (in the worker thread) ----------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise UploadProblem(422, f"Too many parts in the multipart body (at most {MAX_PARTS}).")
        self._headers, self._field, self._value = [], b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._field.strip().lower(), self._value.strip()))
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        headers = dict(self._headers)
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or options.get(b"name") != FILE_FIELD.encode():
            self._in_file = False  # another field: read past it
            return
        if self._file_seen:
            raise UploadProblem(422, "Send exactly one part named 'file'.", FILE_FIELD)
        self._file_seen = self._in_file = True
        filename = options.get(b"filename", b"").decode("utf-8", errors="replace")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        self.writer = self.store.begin_upload(self.owner, clean_filename(filename), clean_content_type(content_type))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file or start == end:
            return
        if self.writer.size + (end - start) > self.max_bytes:
            raise UploadProblem(413, f"The file is larger than MAX_UPLOAD_BYTES ({self.max_bytes:,} bytes).", FILE_FIELD)
        self.writer.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.finished = True

    # -- driving it ---------------------------------------------------------------------------

    def feed(self, block: bytes) -> None:
        """Parse one block of the body (in a worker thread)."""
        if self.finished:
            return  # an epilogue after the closing boundary: ignored
        try:
            self._parser.write(block)
        except MultipartParseError as exc:
            raise UploadProblem(422, f"The body is not valid multipart/form-data ({exc}).") from None

    def commit(self) -> UploadInfo:
        """The stored upload, once the whole body was read (in a worker thread)."""
        if not self.finished:
            raise UploadProblem(422, "The multipart body ended before its closing boundary.")
        if self.writer is None:
            raise UploadProblem(422, "The multipart body has no part named 'file' (send the file as -F file=@path).",
                                FILE_FIELD)
        return self.writer.commit()

    def discard(self) -> None:
        """Delete what was written of an upload that will not be committed."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.abort()


async def receive_upload(body: AsyncIterable[bytes], store: ArtifactStore, owner: str, boundary: bytes,
                         max_bytes: int) -> UploadInfo:
    """Stream ``body`` (``request.stream()``) into a new upload of ``owner``; the stored upload, or
    UploadProblem (nothing is left in the store then, nor after any other exception)."""
    upload = MultipartUpload(store, owner, boundary, max_bytes)
    pending: Optional[asyncio.Future] = None  # the worker thread's current call

    async def in_thread(function, *args):
        nonlocal pending
        pending = asyncio.get_running_loop().run_in_executor(None, function, *args)
        return await pending

    try:
        batch, size = [], 0
        async for block in body:
            if block:
                batch.append(block)
                size += len(block)
            if size >= BATCH_BYTES:
                await in_thread(upload.feed, b"".join(batch))
                batch, size = [], 0
        if batch:
            await in_thread(upload.feed, b"".join(batch))
        return await in_thread(upload.commit)
    except Exception:  # a refusal, a client gone, a body past the middleware's cap: no thread is running
        await asyncio.to_thread(upload.discard)
        raise
    except BaseException:  # cancelled: maybe while the thread writes, so discard after it
        if pending is not None and not pending.done():
            pending.add_done_callback(lambda _: upload.discard())
        else:
            upload.discard()
        raise
