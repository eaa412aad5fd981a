"""thumbnails: Pillow opens every thumbnail; sizes fit max_edge with the aspect kept; bad items are
per-item errors."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from PIL import Image
from pydantic import ValidationError

from compute.kinds import InvalidParams
from compute.kinds.thumbnails import KIND, NoThumbnails
from tests.compute.kinds.conftest import Job
from tests.support.archives import image_bytes, many_members_zip, png_bomb, truncated_png, zip_bytes

# name -> (bytes, upright size of the original, format); the EXIF-rotated JPEG is stored 120x60
GOOD = {
    "wide.png": (image_bytes((300, 200), "PNG"), (300, 200), "PNG"),
    "tall.jpg": (image_bytes((200, 400), "JPEG"), (200, 400), "JPEG"),
    "photos/rotated.jpeg": (image_bytes((120, 60), "JPEG", exif_orientation=6), (60, 120), "JPEG"),
    "small grey.png": (image_bytes((50, 20), "PNG", mode="L"), (50, 20), "PNG"),
    "odd.PNG": (image_bytes((257, 3), "PNG"), (257, 3), "PNG"),
    "misnamed.png": (image_bytes((90, 90), "JPEG"), (90, 90), "JPEG"),
}
BAD = {
    "notes.txt": (b"not an image at all", "not an image"),
    "fake.png": (b"\x89PNG but not really", "not an image"),
    "broken.png": (truncated_png(), "unreadable image"),
    "bomb.png": (png_bomb(), "decompression bomb"),
    "picture.gif": (None, "not a JPEG or PNG image (GIF)"),
    "../escape.png": (image_bytes((10, 10)), "traversal"),
}


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, format="GIF")
    return out.getvalue()


def archive() -> bytes:
    members = [(name, data) for name, (data, _, _) in GOOD.items()]
    members += [(name, data if data is not None else gif()) for name, (data, _) in BAD.items()]
    return zip_bytes(members)


@pytest.mark.parametrize("chunks", [1, 3, 12])
def test_every_image_gets_a_thumbnail_and_every_bad_item_an_error(store, upload, chunks):
    job = Job(KIND, store)
    result, outputs = job.run(chunks, upload_id=upload(archive(), "photos.zip"), max_edge=64)
    assert (result["images"], result["ok"], result["failed"]) == (12, 6, 6)
    assert (result["artifact"], result["manifest"]) == ("thumbnails.zip", "manifest.json")
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert set(errors) == set(BAD)
    for name, (_, why) in BAD.items():
        assert why in errors[name], (name, errors[name])

    manifest = json.loads(job.artifact("manifest.json"))
    with zipfile.ZipFile(io.BytesIO(job.artifact("thumbnails.zip"))) as thumbs:
        assert json.loads(thumbs.read("manifest.json")) == manifest
        names = thumbs.namelist()
        items = {item["name"]: item for item in manifest["items"]}
        assert len(names) == 7 and set(items) == set(GOOD) | set(BAD)
        for name, (_, (width, height), fmt) in GOOD.items():
            item = items[name]
            assert (item["width"], item["height"]) == (width, height)
            assert ".." not in item["thumb"] and not item["thumb"].startswith("/")
            with Image.open(io.BytesIO(thumbs.read(item["thumb"]))) as thumb:
                thumb.load()
                assert thumb.format == fmt and thumb.size == (item["thumb_width"], item["thumb_height"])
                tw, th = thumb.size
            assert max(tw, th) <= 64 and (max(tw, th) == 64 or (tw, th) == (width, height))  # never enlarged
            if width >= height:  # aspect kept: the short side is the long side scaled, within 1 px
                assert abs(th - tw * height / width) <= 1
            else:
                assert abs(tw - th * width / height) <= 1
    assert items["small grey.png"]["thumb"] == "small_grey.png"
    assert items["misnamed.png"]["thumb"] == "misnamed.png.jpg"  # named by what it is
    assert items["photos/rotated.jpeg"]["thumb"] == "photos/rotated.jpeg"
    assert sum(o["ok"] for o in outputs) == 6 and len(outputs) <= chunks


def test_the_rotated_photo_is_turned_upright(store, upload):
    """A landscape photo stored with EXIF orientation 6 (rotate 90 degrees): its thumbnail is portrait."""
    job = Job(KIND, store)
    job.run(1, upload_id=upload(zip_bytes({"r.jpg": image_bytes((160, 40), "JPEG", exif_orientation=6)})),
            max_edge=32)
    with zipfile.ZipFile(io.BytesIO(job.artifact("thumbnails.zip"))) as thumbs, \
            Image.open(io.BytesIO(thumbs.read("r.jpg"))) as thumb:
        assert thumb.size == (8, 32) and 0x0112 not in thumb.getexif()


def test_only_bad_items_fail_the_job(store, upload):
    data = zip_bytes({"a.png": truncated_png(), "b.jpg": b"nope", "c.png": png_bomb()})
    with pytest.raises(NoThumbnails, match=r"none of the 3 items could be thumbnailed; a.png: unreadable"):
        Job(KIND, store).run(2, upload_id=upload(data))


@pytest.mark.parametrize("data, why", [
    (image_bytes((20, 20)), "not a zip archive"),
    (b"PK\x03\x04 truncated", "not a zip archive"),
    (zip_bytes({"readme.txt": b"hi", "dir/": b""}), "no .jpg, .jpeg or .png files"),
    (zip_bytes({}), "no .jpg, .jpeg or .png files"),
])
def test_uploads_it_cannot_use_are_invalid_params(store, upload, data, why):
    with pytest.raises(InvalidParams, match=why) as error:
        Job(KIND, store).split(2, upload_id=upload(data))
    assert error.value.field == "upload_id"


def test_too_many_members_is_invalid_params(store, upload, caps):
    caps(MAX_ARCHIVE_MEMBERS=20)
    with pytest.raises(InvalidParams, match="over MAX_ARCHIVE_MEMBERS"):
        Job(KIND, store).split(2, upload_id=upload(many_members_zip(21)))


def test_a_member_over_the_size_cap_is_a_per_item_error(store, upload, caps):
    caps(MAX_ARCHIVE_MEMBER_BYTES=4096)
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(out, format="PNG")  # noise: no compression
    big = out.getvalue()
    assert len(big) > 4096
    result, _ = Job(KIND, store).run(1, upload_id=upload(zip_bytes({"big.png": big, "ok.png": image_bytes((9, 9))},
                                                                  zipfile.ZIP_STORED)))
    assert result["ok"] == 1 and "MAX_ARCHIVE_MEMBER_BYTES" in result["errors"][0]["error"]


@pytest.mark.parametrize("bad", [{"max_edge": 15}, {"max_edge": 1025}, {"max_edge": 64.5}, {"upload_id": "x"}])
def test_params_are_checked(bad):
    with pytest.raises(ValidationError):
        KIND.Params.model_validate({"upload_id": "a" * 32} | bad)


def test_thumbnail_names_stay_unique(store, upload):
    """x.png holds a JPEG, so its thumbnail is x.png.jpg, the name of another member's thumbnail."""
    data = zip_bytes({"x.png": image_bytes((20, 10), "JPEG"), "x.png.jpg": image_bytes((10, 20), "JPEG"),
                      "a b.png": image_bytes((5, 5)), "a_b.png": image_bytes((6, 6))})
    job = Job(KIND, store)
    result, _ = job.run(2, upload_id=upload(data), max_edge=16)
    manifest = json.loads(job.artifact("manifest.json"))
    thumbs = [item["thumb"] for item in manifest["items"]]
    assert result["ok"] == 4 and len(set(thumbs)) == 4
    assert thumbs == ["x.png.jpg", "00001-x.png.jpg", "a_b.png", "a_b-3.png"]
    with zipfile.ZipFile(io.BytesIO(job.artifact("thumbnails.zip"))) as merged:
        assert sorted(merged.namelist()) == sorted(thumbs + ["manifest.json"])
        with Image.open(io.BytesIO(merged.read("00001-x.png.jpg"))) as thumb:
            assert thumb.size == (8, 16)
