"""``thumbnails``: thumbnails of every JPEG/PNG image in an uploaded zip, with a JSON manifest.

A chunk is a group of members: each is read through :mod:`compute.archives` (size and ratio caps),
opened with Pillow (pixel cap against decompression bombs; truncated files refused), turned upright
by its EXIF orientation and shrunk to fit ``max_edge`` with its aspect kept, in its own format. A
bad item is a per-item error; the chunk's thumbnails and manifest go to ``parts/NNNNN.zip`` and
``combine`` merges the parts into ``thumbnails.zip`` (which holds ``manifest.json`` too).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import warnings
import zipfile

from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

from compute import archives
from compute.kinds import InvalidParams, JobKind, JsonInt, RetryPolicy, UploadId

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FORMATS = {"JPEG": ".jpg", "PNG": ".png"}
# Pixels an image may have (Pillow's own MAX_IMAGE_PIXELS too, if lower): 50 Mpx is ~150 MB decoded.
MAX_PIXELS = 50_000_000
MAX_ERRORS = 100
SPOOL_BYTES = 32 << 20  # zips being built stay in memory up to this, then spill to a temporary file


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: UploadId
    max_edge: JsonInt = Field(128, ge=16, le=1024, description="Longest side of a thumbnail, in pixels.")


class BadImage(ValueError):
    """An item that is not a usable JPEG/PNG image: a per-item error."""


class NoThumbnails(ValueError):
    """Every item failed: the job fails, naming the first errors."""


def split(params: Params, chunks: int, ctx) -> list[dict]:
    """Groups of members balanced by size; 422 for an upload that is not a zip or has no images."""
    with ctx.open_upload(params.upload_id) as file:
        if not archives.is_zip(file.read(4)):
            raise InvalidParams("upload_id", "not a zip archive (thumbnails reads a zip of JPEG/PNG images)")
        file.seek(0)
        try:
            members = archives.members(archives.open_zip(file))
        except archives.ArchiveError as exc:
            raise InvalidParams("upload_id", str(exc)) from None
    if not any(m.name.lower().endswith(IMAGE_SUFFIXES) for m in members):
        raise InvalidParams("upload_id", "the zip holds no .jpg, .jpeg or .png files")
    return [{"upload_id": params.upload_id, "max_edge": params.max_edge, "start": a, "end": b}
            for a, b in archives.balanced_groups([m.size for m in members], chunks)]


def make_thumbnail(data: bytes, max_edge: int) -> tuple[bytes, str, tuple[int, int], tuple[int, int]]:
    """(thumbnail bytes, format, upright size of the original, thumbnail size), or BadImage."""
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = "JPEG" if image.format == "MPO" else image.format  # MPO: a camera's JPEG with extras
                if fmt not in FORMATS:
                    raise BadImage(f"not a JPEG or PNG image ({image.format})")
                if image.width * image.height > limit:
                    raise BadImage(f"{image.width}x{image.height} pixels, over the limit of {limit:,} "
                                   "(a decompression bomb?)")
                size = image.size
                if image.getexif().get(0x0112) in (5, 6, 7, 8):  # orientations that swap the sides
                    size = size[::-1]
                image.draft(None, (2 * max_edge, 2 * max_edge))  # JPEG: decode at a reduced scale
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((max_edge, max_edge))
                if fmt == "JPEG" and upright.mode not in ("RGB", "L", "CMYK"):
                    upright = upright.convert("RGB")
                out = io.BytesIO()
                upright.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
                return out.getvalue(), fmt, size, upright.size
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image Pillow recognises") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb refused ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise BadImage(f"unreadable image ({type(exc).__name__}: {exc})") from None


def _thumb_name(safe_name: str, fmt: str) -> str:
    keep = (".jpg", ".jpeg") if fmt == "JPEG" else (".png",)
    return safe_name if safe_name.lower().endswith(keep) else safe_name + FORMATS[fmt]


def run_chunk(chunk: dict, ctx) -> dict:
    """Thumbnail members start..end into ``parts/NNNNN.zip`` (its ``manifest.json``: the items)."""
    items, ok = [], 0
    with ctx.open_upload(chunk["upload_id"]) as file, tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        archive = archives.open_zip(file)
        group = archives.members(archive)[chunk["start"]:chunk["end"] + 1]
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as part:
            for done, member in enumerate(group, 1):
                item = {"index": member.index, "name": member.name}
                try:
                    data = archives.read_member(archive, member)
                    thumb, fmt, (width, height), (tw, th) = make_thumbnail(data, chunk["max_edge"])
                except (archives.MemberError, BadImage) as exc:
                    item["error"] = str(exc)
                else:
                    item |= {"width": width, "height": height, "thumb": _thumb_name(member.safe_name, fmt),
                             "thumb_width": tw, "thumb_height": th}
                    part.writestr(item["thumb"], thumb)
                    ok += 1
                items.append(item)
                ctx.progress(done / len(group))
            part.writestr("manifest.json", json.dumps(items, ensure_ascii=False))
        spool.seek(0)
        name = f"parts/{ctx.index:05d}.zip"
        ctx.write_artifact(name, spool, "application/zip")
    return {"start": chunk["start"], "end": chunk["end"], "part": name, "ok": ok, "failed": len(items) - ok}


def combine(outputs: list[dict], ctx) -> dict:
    """Merge the part zips into ``thumbnails.zip`` and ``manifest.json``; fail if no item worked."""
    if not any(o["ok"] for o in outputs):
        errors = _errors(outputs, ctx, 3)
        raise NoThumbnails(f"none of the {sum(o['failed'] for o in outputs)} items could be thumbnailed; "
                           + "; ".join(f"{e['item']}: {e['error']}" for e in errors))
    items, used = [], {"manifest.json"}
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as merged:
            for output in outputs:
                with ctx.open_artifact(output["part"]) as f, zipfile.ZipFile(f) as part:
                    for item in json.loads(part.read("manifest.json")):
                        if "thumb" in item:
                            name = item["thumb"]
                            while name in used:  # only if a renamed misnamed image meets a real name
                                name = f"{item['index']:05d}-{name}"
                            used.add(name)
                            with part.open(item["thumb"]) as src, merged.open(name, "w") as dst:
                                shutil.copyfileobj(src, dst)
                            item["thumb"] = name
                        items.append(item)
            ok = sum("thumb" in item for item in items)
            manifest = json.dumps({"images": len(items), "ok": ok, "failed": len(items) - ok, "items": items},
                                  ensure_ascii=False, indent=1).encode()
            merged.writestr("manifest.json", manifest)
        spool.seek(0)
        ctx.write_artifact("thumbnails.zip", spool, "application/zip")
    ctx.write_artifact("manifest.json", manifest, "application/json")
    errors = [{"item": i["name"], "error": i["error"]} for i in items if "error" in i][:MAX_ERRORS]
    return {"images": len(items), "ok": ok, "failed": len(items) - ok, "artifact": "thumbnails.zip",
            "manifest": "manifest.json", "errors": errors}


def _errors(outputs: list[dict], ctx, limit: int) -> list[dict]:
    errors = []
    for output in outputs:
        with ctx.open_artifact(output["part"]) as f, zipfile.ZipFile(f) as part:
            errors += [{"item": i["name"], "error": i["error"]} for i in json.loads(part.read("manifest.json"))
                       if "error" in i]
        if len(errors) >= limit:
            break
    return errors[:limit]


KIND = JobKind(
    name="thumbnails", description="Thumbnails (aspect kept) of the JPEG/PNG images in an uploaded zip.",
    Params=Params, split=split, run_chunk=run_chunk, combine=combine,
    retry=RetryPolicy(transient=(OSError,), max_attempts=3, backoff_seconds=0.5),
    timeout_seconds=600.0, deterministic=True, default_chunks=4, max_chunks=256,
)
