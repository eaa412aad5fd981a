"""``word_count``: the words of an uploaded UTF-8 text file, or of a zip of text files.

Words are the ``\\w+`` runs of the case-folded text (Python's ``re``, Unicode). A text upload is cut
into byte ranges right after a newline (a word never spans one, and case folding maps characters
one by one, so counting the pieces apart is exact); a zip is cut into groups of members balanced by
size. Each chunk writes its counts as ``parts/NNNNN.json`` (they can be far bigger than a chunk's
JSON result may be) and ``combine`` adds them up.
"""

from __future__ import annotations

import codecs
import heapq
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from compute import archives
from compute.kinds import InvalidParams, JobKind, JsonInt, RetryPolicy, UploadId

WORD = re.compile(r"\w+")
HEAD_BYTES = 8192  # what split reads to tell text from binary
SCAN_LIMIT = 1 << 20  # how far split looks for a newline after each cut point
READ_BLOCK = 1 << 20
MAX_ERRORS = 100  # per-item errors kept in a result (a chunk's JSON and the job's are bounded)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: UploadId
    top_k: JsonInt = Field(20, ge=1, le=1000, description="How many of the most frequent words to return.")


class NotUtf8Text(ValueError):
    """A text upload with bytes that are not UTF-8: the job fails, naming the offset."""


def count_words(blocks: Iterable[bytes], offset: int = 0) -> Counter:
    """Count the words of UTF-8 bytes arriving in blocks, decoding as they come; the text is
    counted up to each block's last newline, so no word is split. NotUtf8Text names the offset
    (``offset`` is the first block's position in the file)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    counts, carry, position = Counter(), "", offset
    for block in _with_end(blocks):
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(block or b"", final=block is None)
        except UnicodeDecodeError as exc:
            raise NotUtf8Text(f"not UTF-8 text: invalid byte 0x{exc.object[exc.start]:02x} at byte offset "
                              f"{position - pending + exc.start:,}") from None
        position += len(block or b"")
        text = carry + text
        cut = len(text) if block is None else text.rfind("\n") + 1
        counts.update(WORD.findall(text[:cut].casefold()))
        carry = text[cut:]
    return counts


def _with_end(blocks: Iterable[bytes]):
    yield from blocks
    yield None


def _read_range(file: BinaryIO, start: int, end: int, ctx) -> Iterable[bytes]:
    file.seek(start)
    size = left = end - start + 1
    while left > 0 and (block := file.read(min(READ_BLOCK, left))):
        left -= len(block)
        yield block
        ctx.progress(1 - left / size)


def _check_text_head(head: bytes) -> None:
    """Refuse, at submission, an upload whose first bytes show it is neither a zip nor UTF-8 text."""
    if b"\x00" in head:
        raise InvalidParams("upload_id", "the upload is neither a zip archive nor UTF-8 text (it has NUL bytes: "
                                         "a binary file?)")
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise InvalidParams("upload_id", f"the upload is neither a zip archive nor UTF-8 text (invalid byte "
                                         f"0x{head[exc.start]:02x} at offset {exc.start})") from None


def _next_line_start(file: BinaryIO, position: int, size: int) -> int:
    """The first offset >= position that starts a line (or ``size``), looking at most SCAN_LIMIT
    bytes ahead (a longer line: ``size``, the cut is dropped)."""
    if position <= 0:
        return 0
    file.seek(position - 1)
    scanned = 0
    while scanned < SCAN_LIMIT and (block := file.read(min(64 << 10, SCAN_LIMIT - scanned))):
        newline = block.find(b"\n")
        if newline >= 0:
            return position + scanned + newline
        scanned += len(block)
    return size


def _split_text(file: BinaryIO, size: int, chunks: int) -> list[dict]:
    """Cut near k*size/chunks, each time after the next newline; what a scan passed over without a
    newline is not scanned again, so split reads at most about the file once (usually far less)."""
    cuts, scanned_to = [0], 0
    for k in range(1, chunks):
        target = max(size * k // chunks, cuts[-1] + 1, scanned_to)
        if target >= size:
            break
        cut = _next_line_start(file, target, size)
        if cut < size:
            cuts.append(cut)
        else:
            scanned_to = target + SCAN_LIMIT
    cuts.append(size)
    return [{"start": a, "end": b - 1} for a, b in itertools.pairwise(cuts)]


def split(params: Params, chunks: int, ctx) -> list[dict]:
    """Byte ranges cut after newlines (text), or groups of members (zip); reads only the head and
    around each cut, or the zip's directory."""
    size = ctx.upload_info(params.upload_id).size
    with ctx.open_upload(params.upload_id) as file:
        head = file.read(HEAD_BYTES)
        if not archives.is_zip(head):
            _check_text_head(head)
            return [dict(r, upload_id=params.upload_id, top_k=params.top_k, zip=False)
                    for r in _split_text(file, size, chunks)]
        try:
            members = archives.members(archives.open_zip(file))
        except archives.ArchiveError as exc:
            raise InvalidParams("upload_id", str(exc)) from None
    if not members:
        raise InvalidParams("upload_id", "the zip archive holds no files")
    return [{"upload_id": params.upload_id, "top_k": params.top_k, "zip": True, "start": a, "end": b}
            for a, b in archives.balanced_groups([m.size for m in members], chunks)]


def run_chunk(chunk: dict, ctx) -> dict:
    """Count one byte range (a bad byte fails the job) or one group of members (a bad member is a
    per-item error), and store the counts as ``parts/NNNNN.json``."""
    counts, errors, files, failed = Counter(), [], 0, 0
    with ctx.open_upload(chunk["upload_id"]) as file:
        if not chunk["zip"]:
            counts = count_words(_read_range(file, chunk["start"], chunk["end"], ctx), chunk["start"])
            files = int(chunk["start"] == 0)  # a text upload is one file: its first range counts it
        else:
            archive = archives.open_zip(file)
            group = archives.members(archive)[chunk["start"]:chunk["end"] + 1]
            for done, member in enumerate(group, 1):
                try:
                    counts.update(count_words(archives.iter_member(archive, member)))
                    files += 1
                except (archives.MemberError, NotUtf8Text) as exc:
                    failed += 1
                    if len(errors) < MAX_ERRORS:
                        errors.append({"item": member.name, "error": str(exc)})
                ctx.progress(done / len(group))
    part = f"parts/{ctx.index:05d}.json"
    ctx.write_artifact(part, json.dumps(counts, ensure_ascii=False).encode(), "application/json")
    return {"start": chunk["start"], "end": chunk["end"], "words": counts.total(), "part": part,
            "errors": errors, "files": files, "failed": failed, "top_k": chunk["top_k"]}


def combine(outputs: list[dict], ctx) -> dict:
    """Add the parts' counts; the top words by count, ties by word. A zip none of whose members
    could be read fails the job."""
    counts = Counter()
    for output in outputs:
        with ctx.open_artifact(output["part"]) as f:
            counts.update(json.load(f))
    files = sum(o["files"] for o in outputs)
    failed = sum(o.get("failed", len(o["errors"])) for o in outputs)
    errors = [e for o in outputs for e in o["errors"]][:MAX_ERRORS]
    if files == 0 and failed:
        raise ValueError(f"no file in the zip could be read ({failed} failed); first: "
                         f"{errors[0]['item']}: {errors[0]['error']}")
    top = heapq.nsmallest(outputs[0]["top_k"], counts.items(), key=lambda item: (-item[1], item[0]))
    return {"total_words": counts.total(), "distinct_words": len(counts), "top": [list(t) for t in top],
            "files": files, "failed": failed, "errors": errors}


KIND = JobKind(
    name="word_count", description="Word counts of an uploaded UTF-8 text file or zip of text files.",
    Params=Params, split=split, run_chunk=run_chunk, combine=combine,
    retry=RetryPolicy(transient=(OSError,), max_attempts=3, backoff_seconds=0.5),
    timeout_seconds=600.0, deterministic=True, default_chunks=4, max_chunks=256,
)
