"""How much parallel CPU the machine gives right now: the same pure-Python work in 1 process, then split
over nproc processes. On an idle machine the speed-up is close to nproc; when other work shares the
cores it drops, and so does every scaling figure taken at the same time (prime_count's speed-up)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

WORK = 6_000_000


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def probe(work: int = WORK, repeats: int = 2) -> dict:
    nproc = os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    best1 = bestn = None
    with ctx.Pool(nproc) as pool:
        pool.map(_burn, [1000] * nproc)  # start the workers
        for _ in range(repeats):
            t = time.perf_counter()
            pool.map(_burn, [work])
            t1 = time.perf_counter() - t
            t = time.perf_counter()
            pool.map(_burn, [work // nproc] * nproc)
            tn = time.perf_counter() - t
            best1 = t1 if best1 is None else min(best1, t1)
            bestn = tn if bestn is None else min(bestn, tn)
    return {"nproc": nproc, "one_process_s": round(best1, 3), "all_processes_s": round(bestn, 3),
            "speedup": round(best1 / bestn, 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    print(probe())
