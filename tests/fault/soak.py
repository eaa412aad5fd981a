"""A bounded soak: concurrent clients submit authenticated jobs of mixed kinds and sizes and poll
them to the end; afterwards every accepted job must be terminal with the exact result.

    python -m tests.fault.soak --duration 120          # starts its own stack (make run's), 2 minutes
    python -m tests.fault.soak --base-url http://127.0.0.1:8000 --duration 600
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from math import isqrt
from pathlib import Path

import httpx
import psutil

from tests.support.local_stack import LocalStackProcess

TERMINAL = {"completed", "failed", "cancelled"}
SMALL_PRIMES_LIMIT = 2_000_000


def expected_result(kind: str, n: int) -> int | None:
    if kind == "range_sum":
        return n * (n + 1) // 2
    if kind == "prime_count":
        sieve = bytearray([1]) * (n + 1)
        sieve[0:2] = b"\x00\x00"
        for p in range(2, isqrt(n) + 1):
            if sieve[p]:
                sieve[p * p :: p] = bytes(len(range(p * p, n + 1, p)))
        return sum(sieve)
    return None  # "explode" fails by design


def random_job(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.6:
        return {"kind": "range_sum", "n": rng.randint(1, 2_000_000), "chunks": rng.randint(1, 16)}
    if roll < 0.95:
        return {"kind": "prime_count", "n": rng.randint(2, SMALL_PRIMES_LIMIT), "chunks": rng.randint(1, 8)}
    return {"kind": "explode", "n": rng.randint(10, 1000), "chunks": rng.randint(2, 4)}


@dataclass
class SoakReport:
    accepted: int = 0
    completed: int = 0
    failed_by_design: int = 0
    wrong: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    rejected: int = 0
    submit_ms: list = field(default_factory=list)
    poll_ms: list = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    seconds: float = 0.0

    def summary(self) -> dict:
        def pct(values, q):
            return round(statistics.quantiles(values, n=100)[q - 1], 1) if len(values) >= 2 else None

        return {
            "accepted": self.accepted, "completed": self.completed, "failed_by_design": self.failed_by_design,
            "lost": len(self.lost), "wrong": len(self.wrong), "rejected": self.rejected,
            "jobs_per_s": round(self.accepted / self.seconds, 2) if self.seconds else 0,
            "submit_p50_ms": pct(self.submit_ms, 50), "submit_p99_ms": pct(self.submit_ms, 99),
            "poll_p50_ms": pct(self.poll_ms, 50), "poll_p99_ms": pct(self.poll_ms, 99),
            "rss_start_mb": round(self.rss_start_mb), "rss_end_mb": round(self.rss_end_mb),
            "seconds": round(self.seconds, 1),
        }


def stack_rss_mb(root_pid: int) -> float:
    root = psutil.Process(root_pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


async def client_loop(base_url: str, token: str, deadline: float, rng: random.Random, report: SoakReport,
                      expectations: dict) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        while time.monotonic() < deadline:
            body = random_job(rng)
            started = time.perf_counter()
            response = await client.post("/jobs", json=body)
            report.submit_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 202:
                report.rejected += 1
                await asyncio.sleep(0.2)
                continue
            report.accepted += 1
            job_id = response.json()["job_id"]
            expectations[job_id] = (body, token)
            while time.monotonic() < deadline + 120:
                started = time.perf_counter()
                job = (await client.get(f"/jobs/{job_id}")).json()
                report.poll_ms.append((time.perf_counter() - started) * 1000)
                if job["status"] in TERMINAL:
                    break
                await asyncio.sleep(0.05)


async def soak(base_url: str, duration: float, clients: int, seed: int) -> dict[str, str]:
    tokens = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for i in range(clients):
            email = f"soak-{i}-{uuid.uuid4().hex[:6]}@example.com"
            await client.post("/auth/register", json={"email": email, "password": "soak password"})
            login = await client.post("/auth/login", json={"email": email, "password": "soak password"})
            tokens.append(login.json()["access_token"])
    return tokens


def _run_async(coroutine):
    """asyncio.run in a thread of its own, so callers may already have an event loop running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run(base_url: str, duration: float, clients: int = 16, seed: int = 7, stack_pid: int | None = None) -> dict:
    report = SoakReport()
    expectations: dict[str, dict] = {}
    tokens = _run_async(soak(base_url, duration, clients, seed))
    if stack_pid:
        report.rss_start_mb = stack_rss_mb(stack_pid)
    start = time.monotonic()
    deadline = start + duration

    async def all_clients():
        await asyncio.gather(*(client_loop(base_url, token, deadline, random.Random(seed + i), report,
                                           expectations) for i, token in enumerate(tokens)))

    _run_async(all_clients())
    report.seconds = time.monotonic() - start
    # every accepted job, read back once more after the run: terminal and exact, or failed by design
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for job_id, (body, token) in expectations.items():
            job = client.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
            if job.get("status") not in TERMINAL:
                report.lost.append(job_id)
            elif body["kind"] == "explode":
                report.failed_by_design += job["status"] == "failed"
                if job["status"] != "failed":
                    report.wrong.append(job_id)
            elif job["status"] == "completed" and job["result"] == expected_result(body["kind"], body["n"]):
                report.completed += 1
            else:
                report.wrong.append(job_id)
    if stack_pid:
        report.rss_end_mb = stack_rss_mb(stack_pid)
    return report.summary()


SOAK_SETTINGS = {"RATE_LIMIT_JOBS": "100000/minute", "RATE_LIMIT_LOGIN": "1000/minute",
                 "MAX_ACTIVE_JOBS_PER_USER": "64"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load (default 120)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--base-url", help="use a running stack (its limits must allow the load)")
    args = parser.parse_args(argv)
    if args.base_url:
        summary = run(args.base_url, args.duration, args.clients)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            stack = LocalStackProcess(Path(tmp), **SOAK_SETTINGS).start()
            try:
                summary = run(stack.url, args.duration, args.clients, stack_pid=stack.process.pid)
            finally:
                stack.stop()
    print(json.dumps(summary, indent=2))
    return 0 if summary["lost"] == 0 and summary["wrong"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
