"""Diagnostic: does a stack get slower after each loaded pass? idle/loaded rounds + per-process CPU."""
import json, sys, time
import httpx, psutil
from bench import noisy, procs
from bench.cli import start_stack, signals_held
from bench.client import register_and_login

env = dict(a.split("=", 1) for a in sys.argv[2:])
out = {"env": env, "rounds": []}
stack = start_stack(env, None)

def cpu():
    res = {}
    for p in stack.snapshot():
        try:
            t = p.cpu_times(); res[f"{procs.label(p)}({p.pid})"] = round(t.user + t.system, 2)
        except psutil.Error:
            pass
    return res

try:
    base = stack.base_url
    token = register_and_login(base)
    with httpx.Client(base_url=base, timeout=60) as c, httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as auth:
        noisy.wait_idle(c)
        [noisy.demo_job(c, 30) for _ in range(5)]
        for rnd in range(4):
            c0, t0 = cpu(), time.time()
            idle = [noisy.demo_job(c, 30) for _ in range(30)]
            time.sleep(5)
            c1, t1 = cpu(), time.time()
            idle_cpu = {k: round(v - c0.get(k, 0), 2) for k, v in c1.items() if v - c0.get(k, 0) > 0.2}
            ld = noisy.loaded(c, auth, 30, 150, print) if rnd < 3 else None
            r = {"idle": noisy._summary(idle), "idle_window_cpu_s": idle_cpu, "idle_window_s": round(t1 - t0, 1),
                 "loadavg": psutil.getloadavg()[0]}
            if ld:
                r["loaded"] = ld["summary"]; r["big"] = ld["big_chunks"].get("chunk_ms_p50")
            # idle CPU burn after the loaded pass (10 s with nothing to do)
            time.sleep(2); c2 = cpu(); time.sleep(10); c3 = cpu()
            r["quiet_10s_cpu_s"] = {k: round(v - c2.get(k, 0), 2) for k, v in c3.items() if v - c2.get(k, 0) > 0.1}
            print(rnd, "idle p50", r["idle"]["p50"], "loaded p50", (r.get("loaded") or {}).get("p50"), "load", r["loadavg"], flush=True)
            print("   quiet cpu", sorted(r["quiet_10s_cpu_s"].items(), key=lambda x: -x[1])[:8], flush=True)
            out["rounds"].append(r)
finally:
    with signals_held():
        stack.stop(); stack.cleanup()
json.dump(out, open(sys.argv[1], "w"), indent=1)
