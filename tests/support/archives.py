"""Builders of real (and hostile) zips and images for the archive-reading kinds' tests."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``(name, bytes)`` pairs (or a dict), names stored exactly as given (``../x`` too)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in (members.items() if isinstance(members, dict) else members):
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def bomb_zip(megabytes: int = 20, name: str = "bomb.txt", others: dict | None = None) -> bytes:
    """A member of ``megabytes`` MiB of zeros (about a thousand times its compressed size), then ``others``."""
    return zip_bytes({name: bytes(megabytes << 20)} | (others or {}))


def many_members_zip(count: int) -> bytes:
    return zip_bytes([(f"f{i}.txt", b"x") for i in range(count)], zipfile.ZIP_STORED)


def lying_zip(data: bytes, declared: int, name: str = "liar.txt") -> bytes:
    """A stored zip of one member whose headers claim ``declared`` bytes instead of ``len(data)``."""
    raw = bytearray(zip_bytes({name: data}, zipfile.ZIP_STORED))
    struct.pack_into("<I", raw, 22, declared)  # local header: uncompressed size
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, declared)  # central directory: uncompressed size
    return bytes(raw)


def image_bytes(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", exif_orientation: int = 0) -> bytes:
    """A real image with a gradient (so JPEG has something to encode), optionally EXIF-rotated."""
    width, height = size
    image = Image.new(mode, size)
    image.putdata([((x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), 128)[: len(mode)]
                   for y in range(height) for x in range(width)] if mode == "RGB" else
                  [(x + y) % 256 for y in range(height) for x in range(width)])
    out = io.BytesIO()
    options = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    data = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def truncated_png(size: tuple[int, int] = (64, 48)) -> bytes:
    data = image_bytes(size, "PNG")
    return data[: len(data) * 2 // 3]
