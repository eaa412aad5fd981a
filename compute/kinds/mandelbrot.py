"""``mandelbrot``: a picture of the Mandelbrot set, one band of rows per chunk.

Each chunk iterates its band with numpy (explicit real float64 arithmetic, so a plain Python loop
gives the very same counts) and writes the band as ``bands/NNNNN.png`` the moment it is done, so a
viewer can watch the picture fill in; its raw counts (and max_iter) go to ``bands/NNNNN.npz`` for
``combine``, which stacks them into ``iterations.npy`` and ``mandelbrot.png``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from compute.kinds import JobKind, JsonInt, RetryPolicy

MAX_SIDE = 4096
VIEW_WIDTH = 3.0  # the x span at zoom 1: the whole set (-2..0.5) with a margin
BLOCK_PIXELS = 1 << 16  # pixels iterated at once: bounds memory, paces progress reports


def _number(default: float, description: str, **limits):
    return Field(default, strict=True, allow_inf_nan=False, description=description, **limits)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: JsonInt = Field(640, ge=1, le=MAX_SIDE, description="Image width in pixels.")
    height: JsonInt = Field(480, ge=1, le=MAX_SIDE, description="Image height in pixels (a chunk is a band of rows).")
    max_iter: JsonInt = Field(200, ge=1, le=10_000, description="Iterations before a point counts as inside the set.")
    center_x: float = _number(-0.75, "Real part of the image's centre.", ge=-4, le=4)
    center_y: float = _number(0.0, "Imaginary part of the image's centre.", ge=-4, le=4)
    zoom: float = _number(1.0, "Magnification: the image spans 3/zoom horizontally (1 shows the whole set); "
                               "beyond 1e11 float64 cannot tell pixels apart.", gt=0, le=1e11)


def pixel_coordinates(chunk: dict, rows: range) -> tuple[np.ndarray, np.ndarray]:
    """The complex plane point (cx, cy) of each pixel centre in ``rows``, as 2-D float64 arrays.
    Pixels are square: both axes step 3/zoom/width; row 0 is the top (largest imaginary part)."""
    width, height = chunk["width"], chunk["height"]
    step = VIEW_WIDTH / chunk["zoom"] / width
    xs = chunk["center_x"] + (np.arange(width, dtype=np.float64) - (width - 1) / 2) * step
    ys = chunk["center_y"] - (np.arange(rows.start, rows.stop, dtype=np.float64) - (height - 1) / 2) * step
    return np.broadcast_to(xs, (len(rows), width)), np.broadcast_to(ys[:, None], (len(rows), width))


def escape_counts(cx: np.ndarray, cy: np.ndarray, max_iter: int) -> np.ndarray:
    """For each c: the first n with |z_n|^2 > 4 where z_0 = 0, z_{n+1} = z_n^2 + c; max_iter if none.
    Only the points still inside are iterated (they are compacted as others escape)."""
    shape = cx.shape
    cx, cy = cx.ravel().copy(), cy.ravel().copy()
    counts = np.full(cx.size, max_iter, dtype=np.uint16)
    alive = np.arange(cx.size)
    x, y = np.zeros_like(cx), np.zeros_like(cy)
    for n in range(max_iter):
        x2, y2 = x * x, y * y
        escaped = x2 + y2 > 4.0
        if escaped.any():
            counts[alive[escaped]] = n
            keep = ~escaped
            alive, x, y, x2, y2, cx, cy = alive[keep], x[keep], y[keep], x2[keep], y2[keep], cx[keep], cy[keep]
            if alive.size == 0:
                break
        x, y = x2 - y2 + cx, 2.0 * x * y + cy
    return counts.reshape(shape)


def colorize(counts: np.ndarray, max_iter: int) -> np.ndarray:
    """A fixed palette: black inside the set, outside a smooth blue-orange ramp (Bernstein
    polynomials) of log(count)/log(max_iter). Same counts, same RGB bytes."""
    t = np.log1p(counts.astype(np.float64)) / np.log1p(max_iter)
    s = 1.0 - t
    rgb = np.stack([9.0 * s * t**3, 15.0 * s**2 * t**2, 8.5 * s**3 * t], axis=-1)
    rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    rgb[counts >= max_iter] = 0
    return rgb


def _png(counts: np.ndarray, max_iter: int) -> bytes:
    """The counts as an RGB PNG (coloured a block of rows at a time: the float temporaries of a
    whole 4096x4096 image would take most of a gigabyte)."""
    rgb = np.empty(counts.shape + (3,), dtype=np.uint8)
    step = max(1, BLOCK_PIXELS // counts.shape[1])
    for row in range(0, counts.shape[0], step):
        rgb[row:row + step] = colorize(counts[row:row + step], max_iter)
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format="PNG")
    return out.getvalue()


def _npy(counts: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, counts, allow_pickle=False)
    return out.getvalue()


def _npz(counts: np.ndarray, max_iter: int) -> bytes:
    out = io.BytesIO()
    np.savez(out, counts=counts, max_iter=np.uint32(max_iter))
    return out.getvalue()


def split(params: Params, chunks: int, ctx=None) -> list[dict]:
    """``min(chunks, height)`` bands of rows whose heights differ by at most one."""
    bands = min(chunks, params.height)
    base, extra = divmod(params.height, bands)
    inputs, start = [], 0
    for band in range(bands):
        rows = base + (1 if band < extra else 0)
        inputs.append({"start": start, "end": start + rows - 1, "band": band, **params.model_dump()})
        start += rows
    return inputs


def run_chunk(chunk: dict, ctx) -> dict:
    """Rows start..end (inclusive), in blocks of about BLOCK_PIXELS, reporting progress after each."""
    start, end, width, max_iter = chunk["start"], chunk["end"], chunk["width"], chunk["max_iter"]
    rows_per_block = max(1, BLOCK_PIXELS // width)
    counts = np.empty((end - start + 1, width), dtype=np.uint16)
    for first in range(start, end + 1, rows_per_block):
        rows = range(first, min(first + rows_per_block, end + 1))
        counts[first - start:rows.stop - start] = escape_counts(*pixel_coordinates(chunk, rows), max_iter)
        ctx.progress((rows.stop - start) / len(counts))
    name = f"bands/{chunk['band']:05d}"
    ctx.write_artifact(f"{name}.npz", _npz(counts, max_iter))
    ctx.write_artifact(f"{name}.png", _png(counts, max_iter), "image/png")
    return {"start": start, "end": end, "artifact": f"{name}.png"}


def combine(outputs: list[dict], ctx) -> dict:
    """Stack the bands' counts (in row order) into ``iterations.npy`` and ``mandelbrot.png``."""
    bands, row, max_iter = [], 0, None
    for output in outputs:
        if output["start"] != row:
            raise ValueError(f"band {output['artifact']} starts at row {output['start']}, expected {row}")
        with ctx.open_artifact(output["artifact"][: -len(".png")] + ".npz") as f, \
                np.load(io.BytesIO(f.read()), allow_pickle=False) as band:
            bands.append(band["counts"])
            max_iter = int(band["max_iter"])
        row = output["end"] + 1
    counts = np.vstack(bands)
    ctx.write_artifact("iterations.npy", _npy(counts))
    ctx.write_artifact("mandelbrot.png", _png(counts, max_iter), "image/png")
    height, width = counts.shape
    return {"width": width, "height": height, "max_iter": max_iter, "artifact": "mandelbrot.png",
            "iterations": "iterations.npy"}


KIND = JobKind(
    name="mandelbrot", description="A PNG of the Mandelbrot set (numpy), one band of rows per chunk.",
    Params=Params, split=split, run_chunk=run_chunk, combine=combine,
    retry=RetryPolicy(transient=(OSError,), max_attempts=3, backoff_seconds=0.5),
    timeout_seconds=600.0, deterministic=True, default_chunks=8, max_chunks=MAX_SIDE,
    demo=True, demo_max={"width": 800, "height": 600, "max_iter": 500},  # the home page's Try-It, no account
)
