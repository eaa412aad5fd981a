"""Where the status GET spends its time: py-spy samples the Serve proxy and the ApiGateway replica
while wrk hammers ``GET /jobs/demo/{id}`` (same load as bench.py's status_rps phase)."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

RATE = 100  # py-spy samples per second


# leaf-most frame's package names the area (py-spy writes frames as "func (package/module.py:line)")
BUCKETS = [
    ("redis client", r"\(redis/"),
    ("pydantic", r"\(pydantic"),
    ("json / orjson / msgpack", r"\((orjson|json|msgpack)/"),
    ("project code (serve_app, compute)", r"\((serve_app|compute)/"),
    ("fastapi", r"\(fastapi/"),
    ("starlette", r"\(starlette/"),
    ("anyio (thread pool hand-off)", r"\(anyio/"),
    ("uvicorn / h11 / httptools", r"\((uvicorn|h11|httptools)/"),
    ("logging", r"\(logging/"),
    ("Ray Serve", r"\(ray/serve/"),
    ("Ray core (actor calls, serialization, metrics)", r"\(ray/"),
    ("asyncio / threading / concurrent.futures", r"\((asyncio|threading|concurrent)[/.]"),
]
# inclusive: share of GIL-holding samples whose stack passes through this frame
MARKERS = [
    ("FastAPI app (whole request in the replica)", "FastAPI.__call__"),
    ("sync dependencies run in the thread pool (run_in_threadpool)", "run_in_threadpool"),
    ("Serve: proxy→replica body/disconnect fetch (actor call per request)", "fetch_until_disconnect"),
    ("Ray actor method calls (.remote)", "ActorMethod._remote"),
    ("Serve request metrics / access log", "Metric._record"),
    ("logging", "(logging/"),
    ("Redis (redis.asyncio)", "(redis/"),
    ("pydantic", "(pydantic"),
    ("Serve proxy routing (router)", "(ray/serve/_private/router.py"),
    ("Serve proxy request handling", "(ray/serve/_private/proxy.py"),
]


def _summarise(raw: Path, seconds: float, rate: int, top: int = 15) -> dict:
    leaf = collections.Counter()
    buckets = collections.Counter()
    marks = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[re.sub(r":\d+\)$", ")", frames[-1])] += n
        for frame in reversed(frames):
            name = next((name for name, pat in BUCKETS if re.search(pat, frame)), None)
            if name:
                buckets[name] += n
                break
        else:
            buckets["other / native"] += n
        for name, marker in MARKERS:
            if marker in stack:
                marks[name] += n
    pct = lambda n: round(100 * n / total, 1) if total else 0
    return {"gil_samples": total,
            "gil_busy_pct": round(100 * total / (seconds * rate), 1),
            "by_area_pct": {k: pct(v) for k, v in buckets.most_common()},
            "inclusive_pct": {k: pct(v) for k, v in marks.most_common()},
            "top_leaf_frames_pct": [(f, pct(v)) for f, v in leaf.most_common(top)]}


def profile_get(stack, base_url: str, job_path: str, out_dir: Path, seconds: int = 10, log=print) -> dict:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    if not shutil.which("wrk"):
        return {"error": "wrk is not installed"}
    targets = {}
    for prefix in ("ray::ServeReplica", "ray::ProxyActor"):
        found = stack.find(prefix)
        if found:
            targets[prefix.removeprefix("ray::")] = found[0].pid
    url = base_url + job_path
    if httpx.get(url, timeout=10).status_code != 200:
        return {"error": f"GET {url} is not 200"}
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = {}
    for name, pid in targets.items():
        raw = out_dir / f"pyspy-{name}.txt"
        spies[name] = (raw, subprocess.Popen(
            [pyspy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(RATE), "--gil",
             "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    log(f"[profile] wrk {seconds}s on {url} with py-spy on {targets}")
    w = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", url], capture_output=True, text=True,
                       timeout=seconds + 30)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", w.stdout)
    out = {"url": url, "seconds": seconds, "rps_while_sampled": float(rps.group(1)) if rps else None,
           "processes": targets, "by_process": {}}
    for name, (raw, proc) in spies.items():
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = b"timeout"
        if raw.exists():
            res = _summarise(raw, seconds, RATE)
            res["raw_file"] = str(raw)
            out["by_process"][name] = res
        else:
            out["by_process"][name] = {"error": (err or b"").decode(errors="replace")[-500:]}
    return out
