"""The ``noisy`` phase: what another user's big job does to the demo's latency, and what the scheduler
costs a big job, per scheduler setting (one stack each, the same measurements, ratios within a stack).

On a stack:
1. warm-up (5 demo jobs, one 1,000-chunk job);
2. the 1,000-chunk job's rate: ``POST /jobs`` range_sum n=10^6 in 1,000 chunks, ``"use_cache": false``,
   chunks/s = total_chunks ÷ the job's own ``duration_ms`` (first chunk launched → recorded), median of
   ``repeats`` (the HTTP wall time, POST → seen completed with 5 ms polls, is kept too);
3. the demo e2e, idle: sequential demo jobs (n=1000, chunks=4, ``POST /jobs/demo``, then
   ``GET /jobs/demo/{id}`` every 5 ms until completed, as bench.py's e2e does), result checked;
4. the same while a second registered user's ``prime_count`` job over 1..BIG_N in 1,000 chunks (~50–150 ms
   a chunk here, so it keeps every CPU busy for tens of seconds) runs: it is started, the phase waits
   until it is ``running`` with chunks done, and a demo job is only sent while it is still running (when
   it ends before enough samples, another starts). A demo job that waits longer than LOADED_CAP_S is
   recorded as capped (the big job is then cancelled so the demo job can end, and a new one started);
   the figure is then a lower bound. At the end the big job is cancelled (``DELETE /jobs/{id}``) and the
   phase waits for the CPUs to be free.
   Where the time went: the loaded demo jobs' chunk facts (``GET /jobs/demo/{id}/chunks``: when each chunk
   started after the job was created, and whether it ran on the interactive lane or a regular worker),
   ``GET /monitoring/cluster`` (scheduler: in flight, queued per priority) sampled during the load, and
   the big job's own chunk times and rate while the demo jobs ran.

The ratio is loaded p50 ÷ idle p50 of the same stack. ``cli.run_project`` runs this on the main stack
(fair, the run's levers) and then on one fresh stack per EXTRA_STACKS entry asked for.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime

import httpx
import psutil

from bench.client import register_and_login

DEMO_BODY = {"n": 1000, "chunks": 4}
DEMO_RESULT = DEMO_BODY["n"] * (DEMO_BODY["n"] + 1) // 2
BIG_N = 5 * 10**9  # 1,000 chunks of 5·10^6 numbers: ~45–95 ms a chunk (sieve) on the 2-core bench machine
BIG_BODY = {"kind": "prime_count", "n": BIG_N, "chunks": 1000, "priority": "normal", "use_cache": False}
MC_BODY = {"kind": "range_sum", "n": 10**6, "chunks": 1000, "use_cache": False}
# BIG_N is above cluster up's default MAX_N (10^9): bench.project starts every stack with MAX_N=10^11
LOADED_CAP_S = 60.0
POLL_S = 0.005
# the other stacks (besides the run's own, "fair"): name → environment on top of the run's --env
EXTRA_STACKS = {"fifo": {"SCHEDULER": "fifo"}, "lane_off": {"INTERACTIVE_SLOTS": "0"}}


def _pct(values, q):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 2)


def _ts(value):
    return datetime.fromisoformat(value).timestamp() if value else None


def demo_job(c: httpx.Client, cap_s: float) -> dict:
    """One demo job, POST to seen completed (GET every POLL_S), at most ``cap_s``."""
    t0 = time.perf_counter()
    try:
        r = c.post("/jobs/demo", json=DEMO_BODY)
    except httpx.HTTPError as exc:
        return {"outcome": "submit_error", "error": type(exc).__name__}
    if r.status_code != 202:
        return {"outcome": "submit_error", "http": r.status_code, "body": r.text[:200]}
    job_id = r.json()["job_id"]
    polls, status = 0, None
    while True:
        try:
            r = c.get(f"/jobs/demo/{job_id}")
        except httpx.HTTPError:
            r = None
        now = time.perf_counter()
        polls += 1
        if r is not None and r.status_code == 200:
            js = r.json()
            status = js.get("status")
            if status == "completed":
                try:
                    ok = int(js.get("result")) == DEMO_RESULT
                except (TypeError, ValueError):
                    ok = False
                return {"outcome": "ok" if ok else "wrong", "ms": round((now - t0) * 1000, 2), "job_id": job_id,
                        "polls": polls, "duration_ms": js.get("duration_ms")}
            if status in ("failed", "cancelled"):
                return {"outcome": status, "job_id": job_id, "detail": str(js.get("detail"))[:200]}
        if now - t0 >= cap_s:
            return {"outcome": "capped", "ms": round(cap_s * 1000, 2), "job_id": job_id, "last_status": status}
        time.sleep(POLL_S)


def _summary(samples: list[dict]) -> dict:
    lat = [s["ms"] for s in samples if s["outcome"] in ("ok", "wrong", "capped")]
    out = {"jobs": len(samples), "p50": _pct(lat, 50), "p95": _pct(lat, 95), "min": _pct(lat, 0),
           "max": _pct(lat, 100), "mean": round(statistics.fmean(lat), 2) if lat else None}
    for outcome in ("wrong", "failed", "cancelled", "submit_error", "capped"):
        out[outcome] = sum(1 for s in samples if s["outcome"] == outcome)
    out["lower_bound"] = out["capped"] > 0  # capped samples count as LOADED_CAP_S
    return out


def _wait_done(c: httpx.Client, path: str, timeout_s: float, poll_s: float = 0.05) -> str | None:
    deadline = time.perf_counter() + timeout_s
    status = None
    while time.perf_counter() < deadline:
        r = c.get(path)
        status = r.json().get("status") if r.status_code == 200 else None
        if status in ("completed", "failed", "cancelled"):
            return status
        time.sleep(poll_s)
    return status


def _cluster(c: httpx.Client) -> dict:
    try:
        js = c.get("/monitoring/cluster").json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {"t": round(time.time(), 2), "cpus_used": js.get("cpus_used"), "cpus_total": js.get("cpus_total"),
            "jobs_active": js.get("jobs_active"), "scheduler": js.get("scheduler")}


def settle(base_url: str, in_a_row: int = 10, timeout_s: float = 120) -> float:
    """Until the health route answers 200 ``in_a_row`` times in a row: right after start-up HAProxy may
    still drop a connection while it learns the replicas (a fresh stack once failed its first request)."""
    t0 = time.perf_counter()
    ok = 0
    with httpx.Client(base_url=base_url, timeout=10) as c:
        while ok < in_a_row and time.perf_counter() - t0 < timeout_s:
            try:
                ok = ok + 1 if c.get("/monitoring/health").status_code == 200 else 0
            except httpx.HTTPError:
                ok = 0
            time.sleep(0.1)
    return round(time.perf_counter() - t0, 1)


def wait_idle(c: httpx.Client, timeout_s: float = 60) -> float:
    """Until no CPU is held by a task and nothing is queued or in flight in the scheduler (or timeout)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        snap = _cluster(c)
        sched = snap.get("scheduler") or {}
        if not snap.get("cpus_used") and not sched.get("inflight_chunks") and \
                not any((sched.get("queued_chunks") or {}).values()):
            break
        time.sleep(0.5)
    return round(time.perf_counter() - t0, 1)


def chunk_rate(c: httpx.Client, repeats: int) -> dict:
    """The 1,000-chunk range_sum job: chunks/s by its duration_ms, median of ``repeats``."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = c.post("/jobs", json=MC_BODY)
        if r.status_code != 202:
            runs.append({"outcome": "submit_error", "http": r.status_code})
            continue
        job_id = r.json()["job_id"]
        status = _wait_done(c, f"/jobs/{job_id}", 600, POLL_S)
        wall = time.perf_counter() - t0
        js = c.get(f"/jobs/{job_id}").json()
        if status != "completed":
            runs.append({"outcome": status})
            continue
        ok = int(js["result"]) == MC_BODY["n"] * (MC_BODY["n"] + 1) // 2
        dur = (js.get("duration_ms") or 0) / 1000
        runs.append({"outcome": "ok" if ok else "wrong", "total_chunks": js["total_chunks"], "duration_s": dur,
                     "wall_s": round(wall, 3),
                     "chunks_per_s": round(js["total_chunks"] / dur, 1) if dur else None,
                     "chunks_per_s_wall": round(js["total_chunks"] / wall, 1)})
    rates = [r["chunks_per_s"] for r in runs if r.get("outcome") == "ok" and r.get("chunks_per_s")]
    walls = [r["chunks_per_s_wall"] for r in runs if r.get("outcome") == "ok"]
    return {"runs": runs, "chunks_per_s": round(statistics.median(rates), 1) if rates else None,
            "chunks_per_s_wall": round(statistics.median(walls), 1) if walls else None}


class BigJob:
    """The other user's 1,000-chunk prime_count job."""

    def __init__(self, c: httpx.Client, log):
        self.c, self.log = c, log
        self.job_id: str | None = None
        self.started: list[dict] = []

    def start(self) -> None:
        r = self.c.post("/jobs", json=BIG_BODY)
        if r.status_code != 202:
            raise RuntimeError(f"big job refused: {r.status_code} {r.text[:300]}")
        self.job_id = r.json()["job_id"]
        t0 = time.perf_counter()
        js = {}
        while time.perf_counter() - t0 < 120:  # running, with a few chunks done: every CPU is busy now
            js = self.c.get(f"/jobs/{self.job_id}").json()
            if js.get("status") in ("completed", "failed", "cancelled"):
                raise RuntimeError(f"big job ended before the demo jobs: {js.get('status')} {js.get('detail')}")
            if js.get("status") == "running" and js.get("completed_chunks", 0) >= 4:
                break
            time.sleep(0.05)
        self.started.append({"job_id": self.job_id, "running_after_s": round(time.perf_counter() - t0, 2)})

    def state(self) -> dict:
        return self.c.get(f"/jobs/{self.job_id}").json()

    def cancel(self) -> str | None:
        if self.job_id is None:
            return None
        r = self.c.delete(f"/jobs/{self.job_id}")
        return "cancelled" if r.status_code == 200 else f"{r.status_code} {r.json().get('detail', '')[:80]}"

    def chunk_facts(self, job_id: str) -> dict:
        try:
            chunks = self.c.get(f"/jobs/{job_id}/chunks").json().get("chunks") or []
        except (httpx.HTTPError, ValueError):
            return {}
        done = [x for x in chunks if x.get("duration_ms") is not None]
        return {"chunks_done": len(done), "chunk_ms_p50": _pct([x["duration_ms"] for x in done], 50),
                "chunk_ms_p95": _pct([x["duration_ms"] for x in done], 95),
                "worker_pids": sorted({x.get("worker_pid") for x in done if x.get("worker_pid")})}


def demo_timelines(c: httpx.Client, samples: list[dict], lane_pids: set[int], big_pids: set[int]) -> dict:
    """Where the loaded demo jobs' time went, from their chunk facts: each chunk's start after the job was
    created, on the lane or a regular worker, and the e2e of the jobs with every chunk on the lane against
    those with a chunk on a regular worker."""
    jobs = []
    for s in samples:
        if s["outcome"] not in ("ok", "wrong", "capped") or not s.get("job_id"):
            continue
        try:
            rec = c.get(f"/jobs/demo/{s['job_id']}").json()
            chunks = c.get(f"/jobs/demo/{s['job_id']}/chunks").json().get("chunks") or []
        except (httpx.HTTPError, ValueError):
            continue
        created = _ts(rec.get("created_at"))
        starts = [(_ts(x.get("started_at")) - created) * 1000 for x in chunks if x.get("started_at") and created]
        on_lane = sum(1 for x in chunks if x.get("worker_pid") in lane_pids)
        on_busy = sum(1 for x in chunks if x.get("worker_pid") in big_pids)
        server = round((_ts(rec.get("completed_at")) - created) * 1000, 1) if rec.get("completed_at") and created \
            else None
        jobs.append({"e2e_ms": s["ms"], "server_ms": server,
                     "http_ms": round(s["ms"] - server, 1) if server is not None else None,
                     "first_chunk_start_ms": round(min(starts), 1) if starts else None,
                     "last_chunk_start_ms": round(max(starts), 1) if starts else None,
                     "chunks": len(chunks), "on_lane": on_lane, "on_big_job_workers": on_busy})
    all_lane = [j["e2e_ms"] for j in jobs if j["chunks"] and j["on_lane"] == j["chunks"]]
    some_regular = [j["e2e_ms"] for j in jobs if j["chunks"] and j["on_lane"] < j["chunks"]]
    return {"jobs": jobs,
            "server_ms_p50": _pct([j["server_ms"] for j in jobs], 50),
            "http_ms_p50": _pct([j["http_ms"] for j in jobs], 50),
            "first_chunk_start_ms_p50": _pct([j["first_chunk_start_ms"] for j in jobs], 50),
            "last_chunk_start_ms_p50": _pct([j["last_chunk_start_ms"] for j in jobs], 50),
            "last_chunk_start_ms_p95": _pct([j["last_chunk_start_ms"] for j in jobs], 95),
            "chunks_on_lane_share": round(sum(j["on_lane"] for j in jobs) / max(1, sum(j["chunks"] for j in jobs)), 3),
            "jobs_all_on_lane": len(all_lane), "e2e_ms_p50_all_on_lane": _pct(all_lane, 50),
            "jobs_with_regular_chunk": len(some_regular), "e2e_ms_p50_with_regular_chunk": _pct(some_regular, 50)}


class Renicer(threading.Thread):
    """Experiment (``--noisy-renice N``): while the big job runs, every Ray worker that runs regular chunks
    (the raylet's children titled ``ray::chunk:...`` or ``ray::IDLE``; not the lane, nor other actors) is
    set to nice N, as if chunk workers lowered their own OS priority: what that would give the demo,
    measured before changing compute/. Only the raylet's children are looked at (a walk of every process
    on a busy machine takes most of a second and would slow this client)."""

    def __init__(self, stack, nice: int, lane_pids: set[int]):
        super().__init__(daemon=True, name="renicer")
        self.nice, self.lane_pids = nice, lane_pids
        self.raylets = stack.find("raylet")
        self.stopping = threading.Event()
        self.reniced: set[int] = set()

    def run(self) -> None:
        while not self.stopping.is_set():
            for raylet in self.raylets:
                try:
                    children = raylet.children()
                except psutil.Error:
                    continue
                for proc in children:
                    if proc.pid in self.lane_pids or proc.pid in self.reniced:
                        continue
                    try:
                        title = (proc.cmdline() or [""])[0]
                        if title.startswith(("ray::chunk:", "ray::IDLE")):
                            proc.nice(self.nice)
                            self.reniced.add(proc.pid)
                    except psutil.Error:
                        pass
            self.stopping.wait(0.5)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.join(5)
        for pid in self.reniced:  # put back: the workers are reused by later phases
            try:
                psutil.Process(pid).nice(0)
            except psutil.Error:
                pass
        return sorted(self.reniced)


def _lane_pids(stack) -> set[int]:
    """The interactive lane's process (its title is ray::InteractiveLane between calls)."""
    return {p.pid for p in stack.find("ray::InteractiveLane")} if stack is not None else set()


def loaded(c: httpx.Client, auth: httpx.Client, samples_wanted: int, budget_s: float, log) -> dict:
    big = BigJob(auth, log)
    samples: list[dict] = []
    cluster: list[dict] = []
    windows: list[dict] = []  # the big job's progress while demo jobs ran
    deadline = time.perf_counter() + budget_s
    try:
        big.start()
        window = {"job_id": big.job_id, "t": time.perf_counter(), "done": big.state().get("completed_chunks", 0)}
        cluster.append(_cluster(c))
        while len(samples) < samples_wanted and time.perf_counter() < deadline:
            st = big.state()
            if st.get("status") != "running":  # it ended: close its window and start another
                windows.append({**window, "ended": st.get("status")})
                big.start()
                window = {"job_id": big.job_id, "t": time.perf_counter(), "done": big.state().get("completed_chunks", 0)}
                continue
            res = demo_job(c, LOADED_CAP_S)
            res["big_done_at_submit"] = st.get("completed_chunks")
            samples.append(res)
            if len(samples) in (1, samples_wanted // 2):
                cluster.append(_cluster(c))
            if res["outcome"] == "capped":  # let the demo job end before the next sample
                log(f"[noisy] a demo job hit the {LOADED_CAP_S:.0f} s cap (big job at "
                    f"{res['big_done_at_submit']} chunks); cancelling the big job")
                big.cancel()
                res["ended_after_cap"] = _wait_done(c, f"/jobs/demo/{res['job_id']}", 300)
                windows.append({**window, "ended": "cancelled after a capped demo job"})
                window = None
                if len(samples) < samples_wanted and time.perf_counter() < deadline:
                    big.start()
                    window = {"job_id": big.job_id, "t": time.perf_counter(),
                              "done": big.state().get("completed_chunks", 0)}
        if window is not None:
            st = big.state()
            window.update(ended=st.get("status"), t_end=time.perf_counter(), done_end=st.get("completed_chunks"))
            windows.append(window)
        cluster.append(_cluster(c))
    finally:
        final = big.cancel()
    for w in windows:
        if w.get("t_end") and w.get("done_end") is not None:
            w["chunks_per_s_during_demo"] = round((w["done_end"] - w["done"]) / (w["t_end"] - w["t"]), 1)
        w.pop("t", None)
        w.pop("t_end", None)
    idle_after_s = wait_idle(c)
    big_facts = big.chunk_facts(big.job_id) if big.job_id else {}
    out = {"summary": _summary(samples), "samples": samples, "cluster": cluster, "big_jobs": big.started,
           "big_windows": windows, "big_chunks": big_facts, "big_cancel": final, "idle_after_s": idle_after_s}
    return out


def run(stack, base_url: str, quick: bool, log, name: str = "fair", repeats: int = 3, renice: int = 0) -> dict:
    """The whole phase on one stack (see the module's docstring)."""
    fifo = (stack.env().get("SCHEDULER") == "fifo") if stack is not None else name == "fifo"
    idle_n = 20 if quick else 40
    loaded_n = (2 if quick else 4) if fifo else (20 if quick else 40)
    budget = (120 if quick else 240) if fifo else (90 if quick else 150)
    out: dict = {"name": name, "env": dict(stack.extra_env) if stack is not None else {},
                 "big_job": BIG_BODY, "demo": DEMO_BODY, "cap_s": LOADED_CAP_S}
    out["settle_s"] = settle(base_url)
    token = register_and_login(base_url)  # the other user: its own owner in the scheduler's fair share
    with httpx.Client(base_url=base_url, timeout=60) as c, \
            httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as auth:
        out["idle_wait_s"] = wait_idle(c)
        warm = [demo_job(c, 30) for _ in range(5)]
        out["warmup"] = {"demo": [w["outcome"] for w in warm], "mc": chunk_rate(auth, 1)["runs"]}
        out["mc"] = chunk_rate(auth, 1 if quick else repeats)
        log(f"[noisy:{name}] 1,000-chunk range_sum: {out['mc']['chunks_per_s']} chunks/s by duration_ms "
            f"({out['mc']['chunks_per_s_wall']} by wall)")
        idle = [demo_job(c, 30) for _ in range(idle_n)]
        out["idle"] = _summary(idle)
        out["idle_samples_ms"] = [s.get("ms") for s in idle]
        log(f"[noisy:{name}] demo e2e idle: p50 {out['idle']['p50']} ms, p95 {out['idle']['p95']} ms")
        out["idle_timelines"] = _brief(demo_timelines(c, idle[-20:], _lane_pids(stack), set()))
        lane_pids = _lane_pids(stack)
        renicer = Renicer(stack, renice, lane_pids) if renice and stack is not None else None
        out["loaded"] = ld = loaded(c, auth, loaded_n, budget, log)
        if renicer:  # the same again with the chunk workers at nice N: a paired comparison on one stack
            renicer.start()
            try:
                out["loaded_reniced"] = loaded(c, auth, loaded_n, budget, log)
            finally:
                pids = renicer.stop()
            out["loaded_reniced"].update(reniced_pids=pids, nice=renice)
            # and plain once more (A-B-A), so a drift of the machine shows against the order of the two
            out["loaded_again"] = loaded(c, auth, loaded_n, budget, log)
        lane_pids |= _lane_pids(stack)
        ld["lane_pids"] = sorted(lane_pids)
        ld["timelines"] = demo_timelines(c, ld["samples"], lane_pids, set(ld["big_chunks"].get("worker_pids") or []))
        if "loaded_reniced" in out:
            lr = out["loaded_reniced"]
            lr["timelines"] = demo_timelines(c, lr["samples"], lane_pids,
                                             set(lr["big_chunks"].get("worker_pids") or []))
            rs = lr["summary"]
            out["ratio_p50_reniced"] = round(rs["p50"] / out["idle"]["p50"], 2) if rs["p50"] and out["idle"]["p50"] \
                else None
            log(f"[noisy:{name}] loaded with chunk workers at nice {renice}: p50 {rs['p50']} ms, p95 {rs['p95']} ms "
                f"→ ratio {out['ratio_p50_reniced']}; server p50 {lr['timelines']['server_ms_p50']} ms, HTTP p50 "
                f"{lr['timelines']['http_ms_p50']} ms; big job during demo "
                f"{[w.get('chunks_per_s_during_demo') for w in lr['big_windows']]} chunks/s "
                f"(plain {[w.get('chunks_per_s_during_demo') for w in ld['big_windows']]}); plain again: p50 "
                f"{out['loaded_again']['summary']['p50']} ms, p95 {out['loaded_again']['summary']['p95']} ms")
        ls = out["loaded"]["summary"]
        out["ratio_p50"] = round(ls["p50"] / out["idle"]["p50"], 2) if ls["p50"] and out["idle"]["p50"] else None
        tl = out["loaded"]["timelines"]
        log(f"[noisy:{name}] demo e2e loaded: p50 {ls['p50']} ms{' (lower bound: capped)' if ls['lower_bound'] else ''}, "
            f"p95 {ls['p95']} ms, {ls['jobs']} jobs → ratio {out['ratio_p50']}; big job chunk p50 "
            f"{out['loaded']['big_chunks'].get('chunk_ms_p50')} ms; server p50 {tl['server_ms_p50']} ms (idle "
            f"{out['idle_timelines']['server_ms_p50']}), HTTP p50 {tl['http_ms_p50']} ms (idle "
            f"{out['idle_timelines']['http_ms_p50']}); demo chunks on lane "
            f"{tl['chunks_on_lane_share']}, e2e p50 all-on-lane {tl['e2e_ms_p50_all_on_lane']} ms "
            f"({tl['jobs_all_on_lane']} jobs) vs with a regular chunk {tl['e2e_ms_p50_with_regular_chunk']} ms "
            f"({tl['jobs_with_regular_chunk']} jobs)")
    return out


def _brief(timelines: dict) -> dict:
    return {k: v for k, v in timelines.items() if k != "jobs"}


# ----------------------------------------------------------------------------- report
def rows(side: dict, row) -> None:
    """Table rows (``row`` is report.build_rows' helper): loaded p50 in the project column, idle p50 in the
    peer column, so the ratio column is the slow-down; then fair's chunks/s against fifo's."""
    stacks = (side.get("noisy") or {}).get("stacks") or {}
    labels = {"fair": "fair", "fifo": "SCHEDULER=fifo", "lane_off": "INTERACTIVE_SLOTS=0"}
    for name in ("fair", "fifo", "lane_off"):
        s = stacks.get(name)
        if not isinstance(s, dict):
            continue
        if "loaded" not in s:
            row(f"noisy neighbour demo p50, {labels[name]}", None, None, note=f"error: {s.get('error', '?')[:200]}")
            continue
        ls, idle = s["loaded"]["summary"], s["idle"]
        tl = s["loaded"].get("timelines") or {}
        bound = f"; {ls['capped']} of {ls['jobs']} hit the {s.get('cap_s'):.0f} s cap: a lower bound" \
            if ls.get("capped") else ""
        few = [x.get("ms") for x in s["loaded"].get("samples") or [] if x.get("ms") is not None]
        each = f" (each: {', '.join(f'{v / 1000:.2f}' for v in few)} s)" if 0 < len(few) <= 6 else ""
        note = (f"demo e2e loaded ÷ idle, same stack; {ls['jobs']}/{idle['jobs']} jobs{each}; loaded p95 {ls['p95']} ms"
                f"{bound}; other user's prime_count {s['big_job']['n']:.0e} in 1,000 chunks, chunk p50 "
                f"{(s['loaded'].get('big_chunks') or {}).get('chunk_ms_p50')} ms; demo chunks on the lane "
                f"{tl.get('chunks_on_lane_share')}")
        loaded_is = "loaded (capped: at least)" if ls.get("lower_bound") else "loaded"
        if name == "fair":
            row(f"noisy neighbour demo p50, fair: {loaded_is} vs idle (ms)", ls["p50"], idle["p50"], "≤ 2× idle",
                lambda r, p: r <= 2, note=note)
        else:
            row(f"noisy neighbour demo p50, {labels[name]}: {loaded_is} vs idle (ms)", ls["p50"], idle["p50"],
                note=note)
        if s.get("ratio_p50_reniced") is not None:
            rs = s["loaded_reniced"]["summary"]
            again = (s.get("loaded_again") or {}).get("summary") or {}
            row(f"  same, chunk workers at nice {s['loaded_reniced'].get('nice')} (experiment)", rs["p50"], idle["p50"],
                note=f"--noisy-renice: the same stack after the plain run, loaded p95 {rs['p95']} ms; plain once more "
                     f"after it: p50 {again.get('p50')} ms, p95 {again.get('p95')} ms")
    fair, fifo = (stacks.get("fair") or {}).get("mc") or {}, (stacks.get("fifo") or {}).get("mc") or {}
    if fair or fifo:
        # HTTP wall time, as bench.py's many_chunks: duration_ms starts when the job is marked running, which
        # under fifo is after all 1,000 tasks went into Ray (seconds here), so it flatters fifo
        row("1,000-chunk chunks/s (POST → seen done), fair vs fifo", fair.get("chunks_per_s_wall"),
            fifo.get("chunks_per_s_wall"), "≥ 0.95× fifo", lambda r, p: r >= 0.95, fmt="{:.0f}",
            note=f"range_sum 10^6, median of {len(fair.get('runs') or [])}/{len(fifo.get('runs') or [])} runs, "
                 f"each on its own stack one after the other; by duration_ms {fair.get('chunks_per_s')} vs "
                 f"{fifo.get('chunks_per_s')} (fifo's starts after all its tasks were submitted)")
