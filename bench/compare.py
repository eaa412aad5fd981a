"""``python -m bench.compare A.json B.json ...``: key project figures of several runs side by side
(e.g. one run per Serve lever), with the load average each ran under."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.report import _bad, _get, mc_rate

FIGURES = [
    ("e2e p50 ms", lambda p: _get(p, "demo", "e2e_latency_ms", "p50")),
    ("e2e p95 ms", lambda p: _get(p, "demo", "e2e_latency_ms", "p95")),
    ("demo jobs/s", lambda p: _get(p, "demo", "job_throughput", "jobs_per_s")),
    ("demo bad jobs", lambda p: _bad(_get(p, "demo", "job_throughput"))),
    ("GET req/s", lambda p: _get(p, "status", "status_get", "rps")),
    ("GET p50 ms", lambda p: _get(p, "status", "status_get", "latency_ms", "p50")),
    ("GET errors", lambda p: _get(p, "status", "status_get", "errors")),
    ("auth jobs/s", lambda p: _get(p, "auth", "job_throughput", "jobs_per_s")),
    ("auth GET req/s", lambda p: _get(p, "auth", "status_get", "rps")),
    ("1000-chunk chunks/s", lambda p: mc_rate(p)[0]),
    ("prime 2-chunk speed-up", lambda p: _get(p, "prime", "speedup", "2")),
    ("PSS idle MiB", lambda p: _get(p, "memory", "idle", "pss_mib")),
    ("PSS after tp MiB", lambda p: _get(p, "memory", "after_throughput", "pss_mib")),
    ("processes", lambda p: _get(p, "memory", "idle", "processes")),
    ("start s", lambda p: _get(p, "start_s")),
]


def describe(meta: dict) -> str:
    lv = dict(meta.get("levers") or {})
    parts = []
    if lv.pop("RAY_SERVE_THROUGHPUT_OPTIMIZED", None) == "1":
        parts.append("TO")
    if lv.pop("RAY_SERVE_ENABLE_HA_PROXY", None) == "1":
        parts.append("HA")
    reps = lv.pop("replicas", 1)
    if reps != 1:
        parts.append(f"{reps}rep")
    target = lv.pop("target", "port")
    parts.append(target)
    parts += [f"{k}={v}" for k, v in lv.items()]
    return "+".join(parts)


def main(argv=None) -> int:
    files = [Path(f) for f in (argv if argv is not None else sys.argv[1:])]
    if not files:
        print("usage: python -m bench.compare RESULTS.json ...", file=sys.stderr)
        return 2
    runs = [json.loads(f.read_text()) for f in files]
    cols = [describe(r.get("meta", {})) for r in runs]
    loads = [f"{r['meta'].get('loadavg_1m_start')}→{r['meta'].get('loadavg_1m_end')}" for r in runs]
    rows = [("run", [r["meta"].get("label") or f.stem for r, f in zip(runs, files)]), ("levers", cols),
            ("load 1m", loads)]
    for name, fn in FIGURES:
        vals = []
        for r in runs:
            v = fn(r.get("project", {}))
            vals.append("—" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v)))
        rows.append((name, vals))
    peer = next((r.get("peer") for r in runs if "demo" in (r.get("peer") or {})), None)
    width0 = max(len(n) for n, _ in rows)
    widths = [max(len(vals[i]) for _, vals in rows) for i in range(len(runs))]
    for name, vals in rows:
        print(name.ljust(width0) + "  " + "  ".join(v.rjust(w) for v, w in zip(vals, widths)))
    if peer:
        print(f"\npeer (from a run above): e2e p50 {_get(peer, 'demo', 'e2e_latency_ms', 'p50')} ms, "
              f"{_get(peer, 'demo', 'job_throughput', 'jobs_per_s')} jobs/s, "
              f"GET {_get(peer, 'status', 'status_get', 'rps')} req/s, 1000-chunk {mc_rate(peer)[0]} chunks/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
