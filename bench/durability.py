"""The cost of a durable 202: the demo e2e + throughput run with the stack's Redis at
``appendfsync always`` (the default: fsync before every reply) and at ``everysec`` (Redis' default:
up to a second of acknowledged jobs lost on a host crash), on the same stack, one after the other.

The policy is switched with ``CONFIG SET`` on the stack's private Redis (the URL from ``cluster up``'s
state file) and put back afterwards; ``aof_delayed_fsync`` (fsyncs Redis had to wait for) is recorded.
"""

from __future__ import annotations

import json

import redis

from bench import client

MODES = ("always", "everysec")


def _summary(run: dict, before: dict, after: dict) -> dict:
    e2e, tp = run.get("e2e_latency_ms") or {}, run.get("job_throughput") or {}
    return {"e2e_p50_ms": e2e.get("p50"), "e2e_p95_ms": e2e.get("p95"), "jobs_per_s": tp.get("jobs_per_s"),
            "aof_delayed_fsync": after.get("aof_delayed_fsync", 0) - before.get("aof_delayed_fsync", 0),
            "aof_last_write_status": after.get("aof_last_write_status"), "raw": run}


def _ratio(a, b):
    return round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def run(stack, base: str, quick_args: list[str], log) -> dict:
    url = json.loads((stack.tmp / "data" / "stack.json").read_text())["redis_url"]
    r = redis.Redis.from_url(url, decode_responses=True)
    in_force = r.config_get("appendfsync")["appendfsync"]
    out: dict = {"in_force": in_force}
    try:
        for mode in MODES:
            r.config_set("appendfsync", mode)
            before = r.info("persistence")
            res = client.run_bench(base, client.PROJECT_DEMO, "e2e,throughput", f"project-durability-{mode}",
                                   quick_args, log)
            out[mode] = _summary(res, before, r.info("persistence"))
            log(f"[durability] appendfsync {mode}: {out[mode]['jobs_per_s']} jobs/s, "
                f"e2e p50 {out[mode]['e2e_p50_ms']} ms")
    finally:
        r.config_set("appendfsync", in_force)
        r.close()
    a, e = out["always"], out["everysec"]
    out["ratio_always_to_everysec"] = {"jobs_per_s": _ratio(a["jobs_per_s"], e["jobs_per_s"]),
                                       "e2e_p50_ms": _ratio(a["e2e_p50_ms"], e["e2e_p50_ms"]),
                                       "e2e_p95_ms": _ratio(a["e2e_p95_ms"], e["e2e_p95_ms"])}
    log(f"[durability] always ÷ everysec: {out['ratio_always_to_everysec']}")
    return out


def rows(side: dict, row) -> None:
    """Table rows (``row`` is report.build_rows' helper): always in the project column, everysec in
    the peer column, so the ratio column is the cost of fsync-before-reply."""
    d = side.get("durability")
    if not isinstance(d, dict) or "always" not in d:
        return
    a, e = d["always"], d.get("everysec", {})
    note = f"same stack; ratio = always ÷ everysec; delayed fsyncs {a.get('aof_delayed_fsync')}/{e.get('aof_delayed_fsync')}"
    row("demo throughput, AOF always vs everysec (jobs/s)", a.get("jobs_per_s"), e.get("jobs_per_s"), fmt="{:.1f}",
        note=note)
    row("demo e2e p50, AOF always vs everysec (ms)", a.get("e2e_p50_ms"), e.get("e2e_p50_ms"), fmt="{:.1f}",
        note="peer column here: the same project at everysec")
