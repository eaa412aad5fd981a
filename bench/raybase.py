"""Raw Ray baseline: trivial tasks per second submitted from one driver.

Run as its own short-lived process (``python -m bench.raybase``) BEFORE the stack starts, with a
private local ``ray.init()``, so the baseline and the stack never share the two cores. The tasks
reserve one CPU each, like the project's chunk tasks. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.raybase")
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=200)
    a = p.parse_args(argv)
    os.environ.pop("RAY_ADDRESS", None)  # never join someone else's cluster
    import ray

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR",
             namespace="bench-raybase", log_to_driver=False)
    init_s = time.perf_counter() - t0

    @ray.remote(num_cpus=1)
    def noop(i):
        return i

    @ray.remote(num_cpus=0)
    class Counter:
        def __init__(self):
            self.n = 0

        async def hit(self, i):
            self.n += 1

        async def count(self):
            return self.n

    @ray.remote(num_cpus=1)
    def noop_report(i, counter):
        counter.hit.remote(i)  # fire and forget: what an actor call per chunk would cost
        return i

    try:
        ray.get([noop.remote(i) for i in range(a.warmup)])  # starts the worker processes
        sync_rates, async_rates = [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = ray.get([noop.remote(i) for i in range(a.tasks)])
            sync_rates.append(a.tasks / (time.perf_counter() - t))
            assert out[-1] == a.tasks - 1
        # the project's runner submits from an asyncio loop and awaits each ref as a future
        import asyncio

        async def fanout():
            t = time.perf_counter()
            futs = [asyncio.wrap_future(noop.remote(i).future()) for i in range(a.tasks)]
            await asyncio.gather(*futs)
            return a.tasks / (time.perf_counter() - t)

        for _ in range(a.repeats):
            async_rates.append(asyncio.run(fanout()))
        # the project's shape: each task also reports to a long-lived actor
        counter = Counter.remote()
        ray.get(counter.count.remote())
        report_rates = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            ray.get([noop_report.remote(i, counter) for i in range(a.tasks)])
            report_rates.append(a.tasks / (time.perf_counter() - t))
    finally:
        ray.shutdown()
    out = {"tasks": a.tasks, "repeats": a.repeats, "num_cpus": os.cpu_count(), "init_s": round(init_s, 2),
           "tasks_per_s": round(statistics.median(sync_rates), 1),
           "tasks_per_s_runs": [round(r, 1) for r in sync_rates],
           "tasks_per_s_futures": round(statistics.median(async_rates), 1),
           "tasks_per_s_futures_runs": [round(r, 1) for r in async_rates],
           "tasks_per_s_with_actor_report": round(statistics.median(report_rates), 1),
           "tasks_per_s_with_actor_report_runs": [round(r, 1) for r in report_rates],
           "how": "private local ray.init() in its own process before the stack starts; "
                  "ray.get([noop.remote(i) for i in range(tasks)]) with num_cpus=1 tasks; median of repeats"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
