"""The ``workloads`` phase: the shipped media and data kinds through the whole service, each against
the same computation done in this process, in the same run (ratios, not absolute times).

- mandelbrot 1024x768, max_iter 300: the job with 1 chunk and with one chunk per CPU, against
  ``compute.kinds.mandelbrot``'s own numpy loop called here (what the service adds around one
  chunk, and what spreading it over chunks gains);
- word_count of a generated 16 MiB text: the upload's MB/s, and the job (one chunk per CPU) against
  one ``Counter`` pass over the same bytes here.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
from collections import Counter

import httpx

from bench.client import run_job

MANDELBROT = {"width": 1024, "height": 768, "max_iter": 300}
TEXT_BYTES = 16 << 20


def _local_mandelbrot() -> float:
    from compute.kinds import mandelbrot

    started = time.perf_counter()
    chunk = {**mandelbrot.Params(**MANDELBROT).model_dump(), "start": 0, "end": MANDELBROT["height"] - 1}
    cx, cy = mandelbrot.pixel_coordinates(chunk, range(MANDELBROT["height"]))
    mandelbrot.escape_counts(cx, cy, MANDELBROT["max_iter"])
    return time.perf_counter() - started


def _text() -> bytes:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(50_000)] + ["the", "of", "and", "café", "straße"] * 2_000
    lines, size = [], 0
    while size < TEXT_BYTES:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        lines.append(line)
        size += len(line.encode())
    return "".join(lines).encode()


def _job_seconds(c: httpx.Client, body: dict) -> float | None:
    res = run_job(c, body)
    if res["outcome"] != "completed":
        return None
    return (res["job"].get("duration_ms") or 0) / 1000


def run(base_url: str, token: str, repeats: int = 3, log=print) -> dict:
    cpus = os.cpu_count() or 2
    out: dict = {"cpus": cpus, "repeats": repeats}
    with httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        local = [_local_mandelbrot() for _ in range(repeats)]
        one = [_job_seconds(c, {"kind": "mandelbrot", "params": MANDELBROT, "chunks": 1, "use_cache": False})
               for _ in range(repeats)]
        many = [_job_seconds(c, {"kind": "mandelbrot", "params": MANDELBROT, "chunks": cpus * 4, "use_cache": False})
                for _ in range(repeats)]
        ok_one, ok_many = [s for s in one if s], [s for s in many if s]
        out["mandelbrot"] = {
            "local_s": round(statistics.median(local), 3),
            "job_1_chunk_s": round(statistics.median(ok_one), 3) if ok_one else None,
            "job_many_chunks_s": round(statistics.median(ok_many), 3) if ok_many else None,
            "chunks": cpus * 4, "failed": len(one) + len(many) - len(ok_one) - len(ok_many)}
        m = out["mandelbrot"]
        log(f"[workloads] mandelbrot {MANDELBROT}: here {m['local_s']} s, job 1 chunk {m['job_1_chunk_s']} s, "
            f"{cpus * 4} chunks {m['job_many_chunks_s']} s")

        data = _text()
        started = time.perf_counter()
        expected = Counter(re.findall(r"\w+", data.decode().casefold()))
        out_local = time.perf_counter() - started
        started = time.perf_counter()
        r = c.post("/uploads", files={"file": ("bench.txt", data, "text/plain")})
        upload_s = time.perf_counter() - started
        r.raise_for_status()
        upload_id = r.json()["upload_id"]
        runs, wrong = [], 0
        for _ in range(repeats):
            res = run_job(c, {"kind": "word_count", "params": {"upload_id": upload_id, "top_k": 10},
                              "chunks": cpus * 2, "use_cache": False})
            if res["outcome"] == "completed":
                runs.append(res["job"]["duration_ms"] / 1000)
                wrong += res["job"]["result"]["total_words"] != sum(expected.values())
        out["word_count"] = {"mib": round(len(data) / 2**20, 1), "local_s": round(out_local, 3),
                             "upload_mib_s": round(len(data) / 2**20 / upload_s, 1),
                             "job_s": round(statistics.median(runs), 3) if runs else None,
                             "wrong": wrong, "failed": repeats - len(runs)}
        w = out["word_count"]
        log(f"[workloads] word_count {w['mib']} MiB: upload {w['upload_mib_s']} MiB/s, here {w['local_s']} s, "
            f"job ({cpus * 2} chunks) {w['job_s']} s, wrong {wrong}")
    return out
