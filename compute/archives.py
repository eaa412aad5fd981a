"""Reading zip uploads safely (word_count, thumbnails).

A zip is user input: its central directory can claim anything. So the member count is checked from
the end record before ``zipfile`` builds its list, declared sizes and compression ratios are checked
before reading, every read is guarded again while it streams (the declared size is never trusted),
and member names are only labels: nothing is ever extracted to disk, and the names used for outputs
are sanitized. A bad member is a per-item error (:class:`MemberError`); only an archive that cannot
be used at all raises :class:`ArchiveError`.
"""

from __future__ import annotations

import lzma
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from compute.config import get_compute_settings

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
READ_BLOCK = 1 << 20
# Below this many bytes a member is harmless whatever its ratio (a file of one repeated character
# compresses 1000:1 and is no bomb), so the ratio cap applies only above it.
RATIO_FLOOR_BYTES = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DRIVE = re.compile(r"^[A-Za-z]:")


class ArchiveError(ValueError):
    """The upload is not a zip this service will read (not a zip, corrupt, too many members)."""


class MemberError(ValueError):
    """One member cannot be read (unsafe name, over a cap, corrupt, encrypted): a per-item error."""


@dataclass(frozen=True)
class Member:
    """A file in the archive: ``name`` as stored (a label only), ``safe_name`` usable as an output
    name (unique in the archive), and ``error`` when its facts alone rule it out."""

    index: int
    name: str
    safe_name: str
    size: int
    compressed_size: int
    error: str | None
    info: zipfile.ZipInfo


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def _declared_entries(file: BinaryIO) -> int | None:
    """The member count the end record declares (``zipfile``'s own reader of it), before the
    central directory is parsed into objects."""
    try:
        end = zipfile._EndRecData(file)
    except OSError:
        return None
    return None if end is None else end[zipfile._ECD_ENTRIES_TOTAL]


def open_zip(file: BinaryIO, settings=None) -> zipfile.ZipFile:
    """A ZipFile over a seekable binary file, or ArchiveError saying why not."""
    settings = settings or get_compute_settings()
    entries = _declared_entries(file)
    if entries is None:
        raise ArchiveError("not a zip archive")
    if entries > settings.max_archive_members:
        raise ArchiveError(f"the zip has {entries:,} members, over MAX_ARCHIVE_MEMBERS "
                           f"({settings.max_archive_members:,})")
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise ArchiveError(f"not a readable zip archive ({exc})") from None
    if len(archive.infolist()) > settings.max_archive_members:  # the end record lied
        raise ArchiveError(f"the zip has over MAX_ARCHIVE_MEMBERS ({settings.max_archive_members:,}) members")
    return archive


def unsafe_reason(name: str) -> str | None:
    """Why a member name could escape a folder if it were ever used as a path (None: it could not)."""
    if "\x00" in name:
        return "name contains a NUL byte"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path in name"
    if ".." in re.split(r"[/\\]", name):
        return "'..' in name (path traversal)"
    return None


def sanitize(name: str) -> str:
    """``name`` as ``/``-joined segments of ``[A-Za-z0-9._-]`` that start with none of ``._-``."""
    segments = []
    for part in re.split(r"[/\\]+", name):
        part = _UNSAFE.sub("_", part).lstrip("._-")
        if part:
            segments.append(part[:80])
    return "/".join(segments) or "file"


def _is_junk(name: str) -> bool:
    """macOS archive litter (resource forks, folder settings), not the user's files."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store"


def members(archive: zipfile.ZipFile, settings=None) -> list[Member]:
    """The archive's files in stored order (directories and macOS litter skipped), each with a
    unique safe name and any error its declared facts already show."""
    settings = settings or get_compute_settings()
    found, taken = [], set()
    for info in archive.infolist():
        if info.is_dir() or _is_junk(info.filename):
            continue
        index = len(found)
        safe = sanitize(info.filename)
        if safe in taken:
            stem, dot, ext = safe.rpartition(".")
            safe = f"{stem}-{index}.{ext}" if dot and stem else f"{safe}-{index}"
        taken.add(safe)
        found.append(Member(index, info.filename, safe, info.file_size, info.compress_size,
                            _declared_error(info, settings), info))
    return found


def _declared_error(info: zipfile.ZipInfo, settings) -> str | None:
    reason = unsafe_reason(info.filename)
    if reason:
        return reason
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link, not a file"
    if info.flag_bits & 0x1:
        return "encrypted member"
    if info.file_size > settings.max_archive_member_bytes:
        return (f"{info.file_size:,} bytes uncompressed, over MAX_ARCHIVE_MEMBER_BYTES "
                f"({settings.max_archive_member_bytes:,})")
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > settings.max_archive_ratio * max(1, info.compress_size):
        return (f"compression ratio {info.file_size / max(1, info.compress_size):,.0f}:1, over "
                f"MAX_ARCHIVE_RATIO ({settings.max_archive_ratio:g}) (a zip bomb?)")
    return None


def iter_member(archive: zipfile.ZipFile, member: Member, settings=None) -> Iterator[bytes]:
    """A member's bytes in blocks; MemberError if its facts rule it out, it is corrupt, or it
    turns out bigger than the size and ratio caps allow, whatever it declared."""
    settings = settings or get_compute_settings()
    if member.error:
        raise MemberError(member.error)
    cap = settings.max_archive_member_bytes
    ratio_cap = max(RATIO_FLOOR_BYTES, settings.max_archive_ratio * max(1, member.compressed_size))
    total = 0
    try:
        with archive.open(member.info) as stream:
            while block := stream.read(READ_BLOCK):
                total += len(block)
                if total > cap:
                    raise MemberError(f"over MAX_ARCHIVE_MEMBER_BYTES ({cap:,}) uncompressed")
                if total > ratio_cap:
                    raise MemberError(f"expands past MAX_ARCHIVE_RATIO ({settings.max_archive_ratio:g}) (a zip bomb?)")
                yield block
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, RuntimeError, NotImplementedError,
            ValueError) as exc:  # not OSError: the store failing to read is transient, not the member's fault
        if isinstance(exc, MemberError):
            raise
        raise MemberError(f"unreadable member ({type(exc).__name__}: {exc})") from None


def read_member(archive: zipfile.ZipFile, member: Member, settings=None) -> bytes:
    return b"".join(iter_member(archive, member, settings))


def balanced_groups(weights: list[int], groups: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, end)`` index ranges (inclusive), at most ``groups`` of them, of roughly
    equal total weight: item i goes to the group its weight's midpoint falls in."""
    if not weights:
        return []
    groups = max(1, min(groups, len(weights)))
    total = sum(w + 1 for w in weights)  # +1: empty files still spread by count
    ranges: list[list[int]] = []
    before = 0
    for index, weight in enumerate(weights):
        group = min(groups - 1, (2 * before + weight + 1) * groups // (2 * total))
        before += weight + 1
        if ranges and ranges[-1][2] == group:
            ranges[-1][1] = index
        else:
            ranges.append([index, index, group])
    return [(start, end) for start, end, _ in ranges]
