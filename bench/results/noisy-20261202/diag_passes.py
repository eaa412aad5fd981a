"""Does each loaded pass on one stack get slower (no renice)? 5 loaded passes, timelines, Redis + process facts."""
import json, sys, time
import httpx, psutil, redis
from bench import noisy, procs
from bench.cli import start_stack, signals_held
from bench.client import register_and_login

out = {"passes": []}
stack = start_stack({}, None)
try:
    base = stack.base_url
    noisy.settle(base)
    rurl = json.loads((stack.tmp / "data" / "stack.json").read_text())["redis_url"]
    rd = redis.Redis.from_url(rurl)
    token = register_and_login(base)
    with httpx.Client(base_url=base, timeout=60) as c, httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as auth:
        noisy.wait_idle(c)
        [noisy.demo_job(c, 30) for _ in range(5)]
        lane = noisy._lane_pids(stack)
        idle = [noisy.demo_job(c, 30) for _ in range(30)]
        out["idle"] = noisy._summary(idle)
        for i in range(5):
            ld = noisy.loaded(c, auth, 30, 150, print)
            tl = noisy.demo_timelines(c, ld["samples"], lane, set(ld["big_chunks"].get("worker_pids") or []))
            idle2 = [noisy.demo_job(c, 30) for _ in range(15)]
            info = rd.info()
            workers = [p for p in stack.snapshot() if procs.label(p).startswith(("ray::IDLE", "ray::chunk"))]
            rec = {"loaded": ld["summary"], "tl": {k: v for k, v in tl.items() if k != "jobs"}, "idle_after": noisy._summary(idle2),
                   "redis_mem_mb": round(info["used_memory"] / 2**20, 1), "aof_mb": round(info.get("aof_current_size", 0) / 2**20, 1),
                   "aof_rewrites": info.get("aof_rewrites"), "aof_delayed_fsync": info.get("aof_delayed_fsync"), "keys": rd.dbsize(),
                   "workers": len(workers), "load": psutil.getloadavg()[0], "big_rate": [w.get("chunks_per_s_during_demo") for w in ld["big_windows"]]}
            out["passes"].append(rec)
            print(i, "loaded p50", rec["loaded"]["p50"], "server", rec["tl"]["server_ms_p50"], "http", rec["tl"]["http_ms_p50"],
                  "lane-only", rec["tl"]["e2e_ms_p50_all_on_lane"], "idle_after", rec["idle_after"]["p50"], "redis", rec["redis_mem_mb"], rec["aof_mb"], rec["aof_rewrites"], rec["aof_delayed_fsync"], rec["keys"], "workers", rec["workers"], "load", rec["load"], flush=True)
finally:
    with signals_held():
        stack.stop(); stack.cleanup()
json.dump(out, open(sys.argv[1], "w"), indent=1)
