"""The table, the JSON and the chart."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path


def _get(d, *path, default=None):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _bad(tp: dict | None):
    if not tp:
        return None
    return sum(tp.get(k) or 0 for k in ("wrong_results", "failed", "lost", "submit_errors"))


def _mismatches(side: dict) -> tuple[int | None, int | None]:
    """(all wrong results, of which 'completed' with a null result) over every bench.py phase."""
    total = null = 0
    seen = False
    for run in [side.get("demo"), side.get("status"), side.get("auth")] + list(side.get("many_chunks") or []):
        if not isinstance(run, dict):
            continue
        for sect, key in (("e2e_latency_ms", "mismatches"), ("job_throughput", "wrong_results")):
            block = run.get(sect)
            if isinstance(block, dict):
                seen = True
                total += block.get(key) or 0
                null += _get(block, "mismatch_detail", "completed_with_null_result", default=0) or 0
        e2e = run.get("e2e_latency_ms")
        if isinstance(e2e, dict):
            total += _get(e2e, "warmup_outcomes", "wrong", default=0) or 0
            null += _get(e2e, "warmup_mismatch_detail", "completed_with_null_result", default=0) or 0
        mc = run.get("many_chunks")
        if isinstance(mc, dict):
            seen = True
            total += 1 if mc.get("outcome") == "wrong" else 0
    return (total, null) if seen else (None, None)


def mc_rate(side: dict):
    runs = [r.get("many_chunks") for r in side.get("many_chunks") or [] if isinstance(r, dict)]
    rates = [r.get("chunks_per_s") for r in runs if isinstance(r, dict) and r.get("result_ok")
             and r.get("chunks") == 1000]
    return _median(rates), len(runs)


def build_rows(res: dict) -> list[dict]:
    pr, pe = res.get("project", {}), res.get("peer", {})
    peer_ok = "demo" in pe
    rows = []

    def row(figure, p, q, target=None, test=None, kind="ratio", note="", fmt="{:.1f}"):
        ratio = (p / q) if (kind == "ratio" and isinstance(p, (int, float)) and isinstance(q, (int, float)) and q) \
            else None
        status = ""
        if test is not None:
            value = ratio if kind == "ratio" else p
            ok = test(value, p) if value is not None else None
            status = "n/a" if ok is None else ("met" if ok else "MISSED")
        rows.append({"figure": figure, "project": p, "peer": q, "ratio": ratio, "target": target or "",
                     "status": status, "note": note, "fmt": fmt})

    e2e_p, e2e_q = _get(pr, "demo", "e2e_latency_ms"), _get(pe, "demo", "e2e_latency_ms")
    row("demo e2e p50 (ms)", _get(e2e_p, "p50"), _get(e2e_q, "p50"), "≤ 0.5× peer", lambda r, p: r <= 0.5)
    row("demo e2e p95 (ms)", _get(e2e_p, "p95"), _get(e2e_q, "p95"), "≤ 1.0× peer", lambda r, p: r <= 1.0)
    tp_p, tp_q = _get(pr, "demo", "job_throughput"), _get(pe, "demo", "job_throughput")
    bad_p = _bad(tp_p)
    row("demo throughput (jobs/s)", _get(tp_p, "jobs_per_s"), _get(tp_q, "jobs_per_s"),
        "≥ 3× peer, 0 bad", lambda r, p: r >= 3 and bad_p == 0, fmt="{:.2f}")
    row("  wrong+failed+lost+submit errors", bad_p, _bad(tp_q), "0", lambda r, p: p == 0, kind="abs", fmt="{:.0f}")
    row("  job latency under load p50 (ms)", _get(tp_p, "job_latency_ms", "p50"),
        _get(tp_q, "job_latency_ms", "p50"))
    st_p, st_q = _get(pr, "status", "status_get"), _get(pe, "status", "status_get")
    err_p = _get(st_p, "errors")
    row("status GET (req/s, wrk 16 conn)", _get(st_p, "rps"), _get(st_q, "rps"), "≥ 1.5× peer, 0 errors",
        lambda r, p: r >= 1.5 and err_p == 0, fmt="{:.0f}")
    row("  GET errors", err_p, _get(st_q, "errors"), "0", lambda r, p: p == 0, kind="abs", fmt="{:.0f}")
    row("  GET latency p50 (ms)", _get(st_p, "latency_ms", "p50"), _get(st_q, "latency_ms", "p50"), fmt="{:.2f}")
    mc_p, n_p = mc_rate(pr)
    mc_q, n_q = mc_rate(pe)
    row("1,000-chunk job (chunks/s)", mc_p, mc_q, "≥ 3× peer", lambda r, p: r >= 3, fmt="{:.0f}",
        note=f"POST /jobs vs /v1/jobs (MAX_CHUNKS=1000); median of {n_p}/{n_q} runs")
    raw = _get(pr, "raybase", "tasks_per_s")
    frac = (mc_p / raw) if (mc_p and raw) else None
    row("raw Ray trivial tasks/s (1 driver)", raw, None, kind="abs", fmt="{:.0f}",
        note="separate local ray.init() before the stack, ray.get of a list; awaited as asyncio futures: "
             f"{_get(pr, 'raybase', 'tasks_per_s_futures')}; each task also calling an actor: "
             f"{_get(pr, 'raybase', 'tasks_per_s_with_actor_report')}")
    row("1,000-chunk chunks/s ÷ raw Ray", frac, None, "≥ 0.80", lambda r, p: p >= 0.8, kind="abs", fmt="{:.2f}")
    sp = _get(pr, "prime", "speedup") or {}
    med = _get(pr, "prime", "median") or {}
    nproc = _get(pr, "prime", "nproc")
    spans = ", ".join(f"{k}: job {v.get('duration_s')} s, chunks' span {v.get('chunk_span_s')} s, "
                      f"slowest chunk {v.get('slowest_chunk_s')} s" for k, v in med.items() if v.get("chunk_span_s"))
    row("prime_count 1e8, 1 chunk (s)", _get(med, "1", "duration_s"), None, kind="abs", fmt="{:.2f}",
        note="job duration_ms (runner start → recorded)" + (f"; medians by chunks — {spans}" if spans else ""))
    probe = _get(pr, "cpu_probe_before_prime") or {}
    row("machine CPU parallelism right then", probe.get("speedup"), None, kind="abs", fmt="{:.2f}",
        note=f"pure-Python work in 1 vs {probe.get('nproc')} processes just before prime_count; an idle machine "
             f"gives ≈ {probe.get('nproc')}, other load lowers it and every speed-up with it" if probe else "")
    for k in ("2", "4", "8"):
        if k in sp:
            best = _get(pr, "prime", "speedup_best", k)
            row(f"prime_count 1e8 speed-up, {k} chunks", sp.get(k), None,
                "≥ 1.8×" if k == "2" else f"ideal {min(int(k), nproc or int(k))}×",
                (lambda r, p: p >= 1.8) if k == "2" else None, kind="abs", fmt="{:.2f}",
                note=f"median of {_get(pr, 'prime', 'repeats')}; best-of: {best}" if best else "")
    def per(a, b):
        return round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    mb = _get(pr, "workloads", "mandelbrot") or {}
    if mb:
        row("mandelbrot 1024×768 job, 1 chunk ÷ in-process numpy", per(mb.get("job_1_chunk_s"), mb.get("local_s")),
            None, kind="abs", fmt="{:.2f}", note=f"job {mb.get('job_1_chunk_s')} s vs {mb.get('local_s')} s here: "
            "what the service adds around one chunk (PNG bands, combine, artifacts)")
        row(f"mandelbrot speed-up, {mb.get('chunks')} chunks vs 1", per(mb.get("job_1_chunk_s"),
            mb.get("job_many_chunks_s")), None, kind="abs", fmt="{:.2f}",
            note=f"{_get(pr, 'workloads', 'cpus')} CPUs; medians of {_get(pr, 'workloads', 'repeats')}; "
                 f"failed {mb.get('failed')}")
    wc = _get(pr, "workloads", "word_count") or {}
    if wc:
        row(f"word_count {wc.get('mib')} MiB job ÷ one Counter pass here", per(wc.get("job_s"), wc.get("local_s")),
            None, kind="abs", fmt="{:.2f}", note=f"job {wc.get('job_s')} s vs {wc.get('local_s')} s here; upload "
            f"{wc.get('upload_mib_s')} MiB/s; wrong {wc.get('wrong')}, failed {wc.get('failed')}")
    mm_p, null_p = _mismatches(pr)
    mm_q, null_q = _mismatches(pe)
    row("completed without right result", mm_p, mm_q, "0", lambda r, p: p == 0, kind="abs", fmt="{:.0f}",
        note=f"all bench.py phases; null result: project {null_p}, peer {null_q}")
    auth_tp = _get(pr, "auth", "job_throughput")
    row("auth /jobs throughput (jobs/s)", _get(auth_tp, "jobs_per_s"), _get(tp_q, "jobs_per_s"), fmt="{:.2f}",
        note=f"peer column: peer demo route; bad jobs {_bad(auth_tp)}")
    row("auth /jobs/{id} GET (req/s)", _get(pr, "auth", "status_get", "rps"), _get(st_q, "rps"), fmt="{:.0f}",
        note=f"errors {_get(pr, 'auth', 'status_get', 'errors')}; peer column: peer demo route")
    from bench import durability, noisy, shards

    durability.rows(pr, row)
    noisy.rows(pr, row)
    shards.rows(pr, row)
    for when in ("idle", "after_throughput"):
        mp, mq = _get(pr, "memory", when) or {}, _get(pe, "memory", when) or {}
        for metric in ("rss", "pss", "uss"):
            row(f"stack memory {when.replace('_', ' ')}, {metric.upper()} (MiB)", mp.get(f"{metric}_mib"),
                mq.get(f"{metric}_mib"), fmt="{:.0f}",
                note=(f"{mp.get('processes')} vs {mq.get('processes')} processes" if metric == "rss" else ""))
    if not peer_ok:
        for r in rows:
            if r["status"] == "n/a" and "peer" in r["target"]:
                r["status"] = "n/a (no peer)"
    return rows


def _fmt(v, fmt):
    if v is None:
        return "—"
    try:
        return fmt.format(v)
    except (ValueError, TypeError):
        return str(v)


def render_table(rows: list[dict]) -> str:
    head = ("figure", "project", "peer", "ratio", "target", "status")
    lines = []
    body = [(r["figure"], _fmt(r["project"], r["fmt"]), _fmt(r["peer"], r["fmt"]),
             f"{r['ratio']:.2f}×" if r["ratio"] is not None else "", r["target"], r["status"]) for r in rows]
    widths = [max(len(str(x[i])) for x in body + [head]) for i in range(len(head))]
    fmt_line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) if i < 4 else str(c).ljust(w)
                                       for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines.append(fmt_line(head))
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:
        lines.append(fmt_line(cells))
    notes = [f"  {r['figure'].strip()}: {r['note']}" for r in rows if r["note"]]
    if notes:
        lines.append("")
        lines.append("notes:")
        lines.extend(notes)
    return "\n".join(lines)


def save(res: dict, results_dir: Path, stamp: str, chart: bool = True) -> dict:
    """JSON first (timestamped + latest.json), then the PNG; a chart failure never loses the data."""
    results_dir.mkdir(parents=True, exist_ok=True)
    name = f"{stamp}{('-' + res['meta']['label']) if res['meta'].get('label') else ''}"
    paths = {"json": results_dir / f"{name}.json", "latest_json": results_dir / "latest.json"}
    if chart:
        paths["png"] = results_dir / f"{name}.png"
        paths["latest_png"] = results_dir / "latest.png"
    res["meta"]["files"] = {k: str(v) for k, v in paths.items()}

    def write():
        text = json.dumps(res, indent=2, default=str)
        for key in ("json", "latest_json"):
            paths[key].write_text(text + "\n")

    write()
    if chart:
        try:
            draw_chart(res, paths["png"])
            paths["latest_png"].write_bytes(paths["png"].read_bytes())
        except Exception as exc:  # matplotlib missing or a figure we cannot draw
            res["meta"]["chart_error"] = f"{type(exc).__name__}: {exc}"
            for key in ("png", "latest_png"):
                paths.pop(key, None)
            res["meta"]["files"] = {k: str(v) for k, v in paths.items()}
            write()
    return paths


SIDES = (("project", "tab:blue", "o", "-"), ("peer", "tab:orange", "s", "--"))


def _percentile_plot(ax, res, path, keys, title, unit="ms"):
    drawn = False
    for side, color, marker, ls in SIDES:
        block = _get(res.get(side, {}), *path)
        if isinstance(block, dict):
            xs = [i for i, k in enumerate(keys) if block.get(k) is not None]
            if xs:
                ax.plot(xs, [block[keys[i]] for i in xs], color=color, marker=marker, linestyle=ls, label=side)
                drawn = True
    ax.set_xticks(range(len(keys)), keys)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)


def _target_bars(ax, rows: list[dict], value_key: str, target_pattern: str, value_format: str) -> None:
    """Horizontal bars of ``row[value_key]``, green when met, with a black tick at each row's target."""
    values = [r[value_key] for r in rows]
    ax.barh(range(len(rows)), values, color=["tab:green" if r["status"] == "met" else "tab:red" for r in rows])
    ax.set_yticks(range(len(rows)), [r["figure"].strip() for r in rows], fontsize=8)
    for i, (r, value) in enumerate(zip(rows, values)):
        m = re.search(target_pattern, r["target"])
        if m:
            ax.plot([float(m.group(1))] * 2, [i - 0.4, i + 0.4], color="black", lw=2.5)
        ax.text(value, i, f" {value_format.format(value)}  (target {r['target']})", va="center", fontsize=7)
    ax.invert_yaxis()


def draw_chart(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 9.5))
    # 1. ratios project/peer against their targets
    ax = axes[0][0]
    rows = [r for r in res["table"] if r["ratio"] is not None and r["target"]]
    if rows:
        _target_bars(ax, rows, "ratio", r"([\d.]+)×", "{:.2f}×")
        ax.axvline(1.0, color="grey", ls=":")
    else:
        ax.text(0.5, 0.5, "no peer figures", ha="center", transform=ax.transAxes)
    ax.set_title("project ÷ peer (green met, red missed; black tick = target)", fontsize=10)
    # 2. project-only figures with absolute targets
    ax = axes[0][1]
    abs_rows = [r for r in res["table"] if r["ratio"] is None and r["status"] in ("met", "MISSED")
                and isinstance(r["project"], (int, float)) and "error" not in r["figure"]
                and "without" not in r["figure"] and "wrong" not in r["figure"]]
    if abs_rows:
        _target_bars(ax, abs_rows, "project", r"([\d.]+)", "{:.2f}")
    ax.set_title("project-only figures against absolute targets", fontsize=10)
    # 3. prime_count scaling
    ax = axes[0][2]
    sp = _get(res.get("project", {}), "prime", "speedup") or {}
    if sp:
        ks = sorted(int(k) for k in sp)
        nproc = res.get("meta", {}).get("nproc") or 1
        ax.plot(ks, [sp[str(k)] for k in ks], "o-", color="tab:blue", label="measured (job duration)")
        spw = _get(res.get("project", {}), "prime", "speedup_wall") or {}
        if spw:
            ax.plot(ks, [spw.get(str(k)) for k in ks], "o:", color="tab:cyan", label="measured (HTTP wall)")
        ax.plot(ks, [min(k, nproc) for k in ks], "k--", label=f"ideal (min(chunks, {nproc} cores))")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.legend(fontsize=8)
    ax.set_title("prime_count n=10^8: speed-up over 1 chunk", fontsize=10)
    ax.set_xlabel("chunks")
    # 4-6. latency distributions (bench.py reports percentiles, not raw samples)
    _percentile_plot(axes[1][0], res, ("demo", "e2e_latency_ms"), ("min", "p50", "p95", "p99", "max"),
                     "demo e2e latency, n=1000 c=4, sequential")
    _percentile_plot(axes[1][1], res, ("demo", "job_throughput", "job_latency_ms"),
                     ("min", "p50", "p95", "p99", "max"), "job latency under 16-client load (n=10k c=8)")
    _percentile_plot(axes[1][2], res, ("status", "status_get", "latency_ms"), ("p50", "p75", "p90", "p99"),
                     "status GET latency under wrk (16 connections)")
    meta = res.get("meta", {})
    fig.suptitle(f"ray-jobs vs Celery peer — {meta.get('date_utc', '')} — {meta.get('nproc')} cores — 1-min load "
                 f"{meta.get('loadavg_1m_start')}→{meta.get('loadavg_1m_end')} — levers {meta.get('levers')}"
                 f"{' — QUICK' if meta.get('quick') else ''}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    """``python -m bench.report results.json [out.png]``: print the table and redraw the chart of a saved run."""
    import sys

    args = (argv if argv is not None else sys.argv[1:])
    if not args:
        print("usage: python -m bench.report RESULTS.json [OUT.png]", file=sys.stderr)
        return 2
    res = json.loads(Path(args[0]).read_text())
    res["table"] = build_rows(res)
    print(render_table(res["table"]))
    out = Path(args[1]) if len(args) > 1 else Path(args[0]).with_suffix(".png")
    draw_chart(res, out)
    print(f"chart: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
