"""mandelbrot against a plain Python, pixel-by-pixel reference (exact iteration counts)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from compute.kinds.mandelbrot import KIND, colorize
from tests.compute.kinds.conftest import Job


def reference_counts(width, height, max_iter, center_x=-0.75, center_y=0.0, zoom=1.0) -> list[list[int]]:
    """The escape-time definition, one pixel at a time: pixel centres, square pixels spanning 3/zoom
    across, row 0 on top; the count is the first n with |z_n|^2 > 4 (max_iter if none)."""
    step = 3.0 / zoom / width
    rows = []
    for row in range(height):
        cy = center_y - (row - (height - 1) / 2) * step
        counts = []
        for col in range(width):
            cx = center_x + (col - (width - 1) / 2) * step
            x = y = 0.0
            n = 0
            while n < max_iter and x * x + y * y <= 4.0:
                x, y = x * x - y * y + cx, 2 * x * y + cy
                n += 1
            counts.append(n)
        rows.append(counts)
    return rows


@pytest.mark.parametrize("chunks", [1, 5, 32, 100])
def test_whole_set_matches_the_reference_exactly(store, chunks):
    job = Job(KIND, store)
    result, outputs = job.run(chunks, width=48, height=32, max_iter=60)

    assert result == {"width": 48, "height": 32, "max_iter": 60, "artifact": "mandelbrot.png",
                      "iterations": "iterations.npy"}
    counts = np.load(io.BytesIO(job.artifact("iterations.npy")), allow_pickle=False)
    assert counts.dtype == np.uint16 and counts.shape == (32, 48)
    assert counts.tolist() == reference_counts(48, 32, 60)
    assert counts.max() == 60 and counts.min() >= 1  # some points inside, the corners escape

    assert len(outputs) == min(chunks, 32)
    assert [o["start"] for o in outputs] == [0] + [o["end"] + 1 for o in outputs[:-1]]
    assert outputs[-1]["end"] == 31
    assert max(o["end"] - o["start"] for o in outputs) - min(o["end"] - o["start"] for o in outputs) <= 1

    with Image.open(io.BytesIO(job.artifact("mandelbrot.png"))) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (48, 32)
        picture = np.asarray(image)
    assert (picture == colorize(counts, 60)).all()
    assert (picture[counts == 60] == 0).all() and picture[counts < 60].any()
    for output in outputs:  # every band is a PNG of its own rows, the same pixels as the whole
        assert set(output) == {"start", "end", "artifact"}
        with Image.open(io.BytesIO(job.artifact(output["artifact"]))) as band:
            assert band.size == (48, output["end"] - output["start"] + 1)
            assert (np.asarray(band) == picture[output["start"]:output["end"] + 1]).all()
    names = [a.name for a in store.list_artifacts("job-1")]
    assert [n for n in names if n.endswith(".png")] == [f"bands/{i:05d}.png" for i in range(len(outputs))] + \
        ["mandelbrot.png"]
    assert all(store.artifact_info("job-1", n).content_type == "image/png" for n in names if n.endswith(".png"))


def test_zoomed_view_matches_the_reference_exactly(store):
    view = {"width": 40, "height": 30, "max_iter": 150, "center_x": -0.743643, "center_y": 0.131825, "zoom": 80.0}
    job = Job(KIND, store)
    result, _ = job.run(3, **view)
    counts = np.load(io.BytesIO(job.artifact(result["iterations"])), allow_pickle=False)
    assert counts.tolist() == reference_counts(**view)
    assert len(np.unique(counts)) > 10  # a detailed region, not a flat one


def test_one_pixel_and_a_single_row(store):
    result, _ = Job(KIND, store, "tiny").run(8, width=1, height=1, max_iter=5)
    assert (result["width"], result["height"]) == (1, 1)
    result, outputs = Job(KIND, store, "row").run(8, width=7, height=1, max_iter=5, center_x=0.0)
    assert len(outputs) == 1 and outputs[0] == {"start": 0, "end": 0, "artifact": "bands/00000.png"}


def test_progress_is_reported_within_a_band(store, monkeypatch):
    monkeypatch.setattr("compute.kinds.mandelbrot.BLOCK_PIXELS", 48 * 4)  # 4 rows per block
    monkeypatch.setattr("compute.kinds.context.PROGRESS_INTERVAL_SECONDS", 0)  # no throttling
    job = Job(KIND, store)
    job.run(2, width=48, height=32, max_iter=20)
    for fractions in job.progress.values():
        assert fractions == sorted(fractions) and len(fractions) == 4 and fractions[-1] == 1.0


def test_the_defaults_show_the_whole_set():
    params = KIND.Params()
    assert (params.center_x, params.center_y, params.zoom) == (-0.75, 0.0, 1.0)
    assert KIND.deterministic and KIND.default_chunks == 8 and KIND.max_chunks == 4096


@pytest.mark.parametrize("bad", [
    {"width": 0}, {"width": 4097}, {"height": 0}, {"height": 4097}, {"max_iter": 0}, {"max_iter": 10_001},
    {"zoom": 0}, {"zoom": -1}, {"zoom": 1e12}, {"zoom": "2"}, {"width": "64"}, {"width": True}, {"width": 64.5},
    {"center_x": float("nan")}, {"center_y": 5}, {"colour": "red"},
])
def test_out_of_range_params_are_refused(bad):
    with pytest.raises(ValidationError) as error:
        KIND.Params.model_validate(bad)
    assert error.value.errors()[0]["loc"] == (next(iter(bad)),)
