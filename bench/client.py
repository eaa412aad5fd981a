"""Talking to the targets: the peer's bench.py as the client for both, plus the few project-only calls."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass

import httpx

from bench import peer

PRIME_N = 10**8
PRIME_PI = 5_761_455  # pi(10^8)


@dataclass
class Routes:
    create: str
    status: str
    header: str | None = None  # "Name: value"


PROJECT_DEMO = Routes("/jobs/demo", "/jobs/demo/{job_id}")
PEER_DEMO = Routes("/v1/jobs/demo", "/v1/jobs/demo/{job_id}")
PEER_GENERAL = Routes("/v1/jobs", "/v1/jobs/{job_id}")


def project_auth(token: str) -> Routes:
    return Routes("/jobs", "/jobs/{job_id}", f"Authorization: Bearer {token}")


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def run_bench(base_url: str, routes: Routes, phases: str, label: str, extra: list[str] | None = None,
              log=print, timeout: float = 1200) -> dict:
    """Run bench.py once; returns its JSON (plus the load average around it)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = f.name
    cmd = [str(peer.bench_python()), str(peer.bench_script()), "--base-url", base_url,
           "--create-path", routes.create, "--status-path-template", routes.status,
           "--phases", phases, "--label", label, "--out", out_path]
    if routes.header:
        cmd += ["--header", routes.header]
    if "many_chunks" in phases:
        cmd += ["--mc-create-path", routes.create, "--mc-status-path-template", routes.status]
    cmd += extra or []
    log(f"[bench.py] {label}: {phases}")
    load0 = loadavg()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"bench.py failed ({r.returncode}): {r.stderr[-2000:]}")
        with open(out_path) as f:
            data = json.load(f)
    finally:
        os.unlink(out_path)
    data["loadavg_1m"] = [load0, loadavg()]
    return data


def quick_args(quick: bool) -> list[str]:
    if not quick:
        return []
    return ["--e2e-jobs", "15", "--e2e-warmup", "3", "--tp-jobs", "60", "--rps-seconds", "4"]


# ----------------------------------------------------------------------------- project-only HTTP
def register_and_login(base_url: str) -> str:
    email = f"bench-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(18)
    with httpx.Client(base_url=base_url, timeout=30) as c:
        r = c.post("/auth/register", json={"email": email, "password": password})
        if r.status_code != 201:
            raise RuntimeError(f"register failed: {r.status_code} {r.text[:300]}")
        r = c.post("/auth/login", json={"email": email, "password": password})
        if r.status_code != 200:
            raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
        return r.json()["access_token"]


def latest_job(base_url: str, token: str) -> dict | None:
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.get("/jobs", params={"limit": 1})
        items = r.json().get("items") if r.status_code == 200 else None
        return items[0] if items else None


def run_job(c: httpx.Client, body: dict, poll_s: float = 0.02, timeout_s: float = 600) -> dict:
    t0 = time.perf_counter()
    r = c.post("/jobs", json=body)
    if r.status_code != 202:
        return {"outcome": "submit_error", "http": r.status_code, "body": r.text[:300]}
    job_id = r.json()["job_id"]
    while time.perf_counter() - t0 < timeout_s:
        r = c.get(f"/jobs/{job_id}")
        js = r.json() if r.status_code == 200 else {}
        if js.get("status") in ("completed", "failed", "cancelled"):
            return {"outcome": js["status"], "wall_s": time.perf_counter() - t0, "job": js}
        time.sleep(poll_s)
    return {"outcome": "lost", "job_id": job_id}


def chunk_timing(c: httpx.Client, job_id: str) -> dict:
    """Where a job's time went: each chunk's own compute time, the span from the first chunk start to
    the last chunk end, and how many worker processes ran them (GET /jobs/{id}/chunks)."""
    from datetime import datetime

    try:
        chunks = c.get(f"/jobs/{job_id}/chunks").json().get("chunks") or []
        starts = [datetime.fromisoformat(x["started_at"]).timestamp() for x in chunks if x.get("started_at")]
        ends = [datetime.fromisoformat(x["ended_at"]).timestamp() for x in chunks if x.get("ended_at")]
        return {"chunk_ms": [x.get("duration_ms") for x in chunks],
                "chunk_span_ms": round((max(ends) - min(starts)) * 1000) if starts and ends else None,
                "worker_pids": len({x.get("worker_pid") for x in chunks})}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}


def prime_scaling(base_url: str, token: str, chunk_counts=(1, 2, 4, 8), repeats: int = 3, log=print) -> dict:
    """prime_count n=10^8 with 1, 2, 4, 8 chunks (POST /jobs; the demo route caps n at 10,000).
    Time = the job's own duration_ms (runner start to recorded result); wall (POST to seen completed,
    20 ms polls) is kept too. Speed-up = median time with 1 chunk / median time with k chunks."""
    out = {"n": PRIME_N, "repeats": repeats, "nproc": os.cpu_count(), "runs": {}, "wrong": 0, "failed": 0}
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
        warm = run_job(c, {"n": 10**6, "chunks": max(chunk_counts), "kind": "prime_count"})
        if warm["outcome"] != "completed":
            out["warmup"] = warm
        for k in chunk_counts:
            runs = []
            for _ in range(repeats):
                res = run_job(c, {"n": PRIME_N, "chunks": k, "kind": "prime_count"})
                if res["outcome"] != "completed":
                    out["failed"] += 1
                    runs.append({"outcome": res["outcome"]})
                    continue
                job = res["job"]
                if int(job.get("result") or -1) != PRIME_PI:
                    out["wrong"] += 1
                run = {"duration_s": (job.get("duration_ms") or 0) / 1000, "wall_s": round(res["wall_s"], 3)}
                run.update(chunk_timing(c, job["job_id"]))
                runs.append(run)
            out["runs"][str(k)] = runs
            log(f"[prime] chunks={k}: " + ", ".join(f"{r.get('duration_s', '?')} s" for r in runs))
    med = {}
    for k, runs in out["runs"].items():
        ds = [r["duration_s"] for r in runs if "duration_s" in r]
        ws = [r["wall_s"] for r in runs if "wall_s" in r]
        med[k] = {"duration_s": statistics.median(ds) if ds else None, "wall_s": statistics.median(ws) if ws else None}
    for k, runs in out["runs"].items():
        spans = [r["chunk_span_ms"] for r in runs if r.get("chunk_span_ms") is not None]
        comp = [max(r["chunk_ms"]) for r in runs if r.get("chunk_ms") and None not in r["chunk_ms"]]
        if spans and k in med:
            med[k]["chunk_span_s"] = statistics.median(spans) / 1000
            med[k]["slowest_chunk_s"] = statistics.median(comp) / 1000 if comp else None
    out["median"] = med
    mins = {k: min((r["duration_s"] for r in runs if "duration_s" in r), default=None) for k, runs in out["runs"].items()}
    out["speedup_best"] = {k: round(mins["1"] / v, 2) if mins.get("1") and v else None for k, v in mins.items()}
    base = med.get("1", {}).get("duration_s")
    out["speedup"] = {k: round(base / v["duration_s"], 2) if base and v["duration_s"] else None for k, v in med.items()}
    base_w = med.get("1", {}).get("wall_s")
    out["speedup_wall"] = {k: round(base_w / v["wall_s"], 2) if base_w and v["wall_s"] else None
                           for k, v in med.items()}
    return out


def run_job_demo(base_url: str) -> str:
    """A completed demo job's id (for the GET profile)."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        r = c.post("/jobs/demo", json={"n": 1000, "chunks": 4})
        r.raise_for_status()
        job_id = r.json()["job_id"]
        for _ in range(500):
            if c.get(f"/jobs/demo/{job_id}").json().get("status") == "completed":
                return job_id
            time.sleep(0.02)
    raise RuntimeError("demo job did not complete")
