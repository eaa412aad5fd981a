"""``python -m bench``: run the same phases against the project and the Celery peer, print one table."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import client, peer, report
from bench.noisy import EXTRA_STACKS
from bench.project import REPO, ProjectStack, StackError

PROJECT_PHASES = ("raybase", "shards", "demo", "status", "auth", "many_chunks", "prime", "workloads", "durability",
                  "memory", "profile", "noisy")
DEFAULT_PHASES = ("raybase", "shards", "demo", "status", "auth", "many_chunks", "prime", "workloads", "durability",
                  "memory", "noisy")


def log(msg: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


class signals_held:
    """Clean-up must not be cut short by a second Ctrl-C or SIGTERM."""

    def __enter__(self):
        self.saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)


def _on_term(signum, frame):
    raise Interrupted(f"signal {signum}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="fewer jobs, 4 s wrk, one repeat: for development (numbers are rough)")
    p.add_argument("--skip-peer", action="store_true", help="project only")
    p.add_argument("--skip-project", action="store_true", help="peer only (a reference for lever sweeps)")
    p.add_argument("--peer-from", type=Path, default=None,
                   help="take the peer's figures from an earlier results JSON instead of running it")
    p.add_argument("--phases", default=",".join(DEFAULT_PHASES),
                   help=f"project phases, comma-separated from {','.join(PROJECT_PHASES)} (default: all but profile)")
    p.add_argument("--profile", action="store_true", help="also py-spy the status GET path (adds ~15 s)")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="extra environment for `python -m cluster up` (repeatable), e.g. RAY_SERVE_THROUGHPUT_OPTIMIZED=1")
    p.add_argument("--ingress", choices=("haproxy", "proxy"), default=None,
                   help="= --env SERVE_INGRESS=...: HAProxy + throughput-optimized Serve (make run's default) or "
                        "Serve's Python proxy")
    p.add_argument("--replicas", type=int, default=None,
                   help="redeploy the ApiGateway with this many replicas after start-up (default: as started)")
    p.add_argument("--target", choices=("port", "direct"), default="port",
                   help="send the project's traffic to PORT (Serve proxy, or HAProxy in HA mode; default) or to "
                        "the replica's direct-ingress port")
    p.add_argument("--code", choices=("tree", "head"), default="tree",
                   help="run the project from the work tree, as `make run` does (default), or from a "
                        "`git archive HEAD` copy (ignores uncommitted edits in progress)")
    p.add_argument("--noisy-stacks", default=None, metavar="NAMES",
                   help="noisy phase: the stacks started after the run's own (comma-separated from fifo, lane_off; "
                        "'none' for the run's own only); default fifo,lane_off (--quick: fifo)")
    p.add_argument("--noisy-renice", type=int, default=0, metavar="N",
                   help="noisy phase experiment: set processes running regular chunks to nice N while the big job "
                        "runs (measures lower-priority chunk workers without changing compute/)")
    p.add_argument("--label", default=None, help="added to the result file names")
    p.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--repeats", type=int, default=None,
                   help="1,000-chunk job repeats (default 3, --quick 1); prime_count uses max(5, this) (--quick 1)")
    a = p.parse_args(argv)
    a.phases = [x.strip() for x in a.phases.split(",") if x.strip()]
    if a.profile and "profile" not in a.phases:
        a.phases.append("profile")
    bad = set(a.phases) - set(PROJECT_PHASES)
    if bad:
        p.error(f"unknown phases {sorted(bad)}")
    env = {}
    for item in a.env:
        if "=" not in item:
            p.error(f"--env wants K=V, got {item!r}")
        k, v = item.split("=", 1)
        env[k] = v
    if a.ingress:
        env["SERVE_INGRESS"] = a.ingress
    a.stack_env = env
    if a.repeats is None:
        a.repeats = 1 if a.quick else 3
    if a.noisy_stacks is None:
        a.noisy_stacks = "fifo" if a.quick else "fifo,lane_off"
    a.noisy_stacks = [x.strip() for x in a.noisy_stacks.split(",") if x.strip() and x.strip() != "none"]
    bad = set(a.noisy_stacks) - set(EXTRA_STACKS)
    if bad:
        p.error(f"unknown --noisy-stacks {sorted(bad)} (from {', '.join(EXTRA_STACKS)})")
    return a


def stack_levers(a) -> dict:
    """What the project ran with: `cluster up`'s defaults unless the run overrode them."""
    env = {**os.environ, **a.stack_env}
    return {"ingress": env.get("SERVE_INGRESS", "haproxy"),
            "replicas": a.replicas or int(env.get("SERVE_REPLICAS", "2")), "target": a.target}


def ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found; installing Debian's wrk package ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        r = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True)
    if shutil.which("wrk"):
        return None
    return "wrk is missing (apt-get install -y wrk): status GET uses bench.py's httpx loop, not comparable"


def run_peer(a, res: dict) -> None:
    stack = peer.PeerStack(max_chunks=1000, log=log)
    side = res["peer"]
    try:
        stack.setup()
        stack.start()
        side["start_s"] = stack.start_s
        side["config"] = {"api_workers": os.cpu_count(), "celery": f"prefork -c {os.cpu_count()}",
                          "MAX_CHUNKS": 1000, "rate_limits": "off (start.sh default)"}
        time.sleep(2)
        side["memory"] = {"idle": stack.memory()}
        q = client.quick_args(a.quick)
        side["demo"] = client.run_bench(stack.base_url, client.PEER_DEMO, "e2e,throughput", "peer-demo", q, log)
        side["memory"]["after_throughput"] = stack.memory()
        side["status"] = client.run_bench(stack.base_url, client.PEER_DEMO, "status_rps", "peer-status", q, log)
        side["many_chunks"] = [client.run_bench(stack.base_url, client.PEER_GENERAL, "many_chunks", f"peer-mc{i}", [],
                                                log) for i in range(a.repeats)]
    finally:
        with signals_held():
            stack.stop()


def run_project(a, res: dict) -> None:
    side = res["project"]
    phases = a.phases
    if "raybase" in phases:
        log("[raybase] raw Ray trivial tasks/s in a private local ray.init() (before the stack starts) ...")
        tasks = 500 if a.quick else 2000
        r = subprocess.run([sys.executable, "-m", "bench.raybase", "--tasks", str(tasks), "--repeats",
                            str(max(a.repeats, 2))], cwd=REPO, capture_output=True, text=True, timeout=600,
                           env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
        try:
            side["raybase"] = json.loads(r.stdout.strip().splitlines()[-1])
            log(f"[raybase] {side['raybase']['tasks_per_s']} tasks/s (runs {side['raybase']['tasks_per_s_runs']})")
        except (IndexError, ValueError):
            side["raybase"] = {"error": (r.stdout + r.stderr)[-2000:]}
    if "shards" in phases:  # its own Redis and multi-node Ray cluster, in a subprocess, before the stack starts
        from bench import shards

        side["shards"] = shards.run_phase(a.quick, a.repeats, log)
    code_dir = None
    if a.code == "head":
        code_dir = Path(tempfile.mkdtemp(prefix="ray-jobs-bench-src-"))
        subprocess.run(f"git archive --format=tar HEAD | tar -x -C {shlex.quote(str(code_dir))}", shell=True,
                       cwd=REPO, check=True)
        log(f"[project] code: git archive HEAD in {code_dir}")
    side["levers"] = {"env": a.stack_env, **stack_levers(a)}
    stack, finished = None, False
    try:
        stack = start_stack(a.stack_env, code_dir)
        side["start_s"] = stack.start_s
        if a.replicas:
            stack.set_replicas(a.replicas)
        side["direct_ingress_ports"] = stack.direct_ingress_ports()
        base = traffic_base(a, stack, side["direct_ingress_ports"])
        side["base_url"] = base
        log(f"[project] traffic goes to {base}; direct-ingress ports {side['direct_ingress_ports']}; "
            f"replicas {len(stack.find('ray::ServeReplica'))}")
        token = client.register_and_login(base)
        q = client.quick_args(a.quick)
        if "memory" in phases:
            time.sleep(5)
            side["memory"] = {"idle": stack.memory()}
            log(f"[memory] idle: {side['memory']['idle']['processes']} processes, RSS "
                f"{side['memory']['idle']['rss_mib']} MiB, PSS {side['memory']['idle']['pss_mib']} MiB")
        if "demo" in phases:
            side["demo"] = client.run_bench(base, client.PROJECT_DEMO, "e2e,throughput", "project-demo", q, log)
            if "memory" in phases:
                side["memory"]["after_throughput"] = stack.memory()
                log(f"[memory] after throughput: RSS {side['memory']['after_throughput']['rss_mib']} MiB, "
                    f"PSS {side['memory']['after_throughput']['pss_mib']} MiB")
        if "status" in phases:
            side["status"] = client.run_bench(base, client.PROJECT_DEMO, "status_rps", "project-status", q, log)
        if "auth" in phases:
            side["auth"] = client.run_bench(base, client.project_auth(token), "throughput,status_rps",
                                            "project-auth", q, log)
        if "many_chunks" in phases:
            side["many_chunks"], side["many_chunks_jobs"] = [], []
            for i in range(a.repeats):
                side["many_chunks"].append(client.run_bench(base, client.project_auth(token), "many_chunks",
                                                            f"project-mc{i}", [], log))
                job = client.latest_job(base, token) or {}
                side["many_chunks_jobs"].append({k: job.get(k) for k in ("total_chunks", "duration_ms", "status")})
        if "prime" in phases:
            from bench import cpuprobe

            side["cpu_probe_before_prime"] = cpuprobe.probe()
            log(f"[cpu] machine parallelism now: {side['cpu_probe_before_prime']}")
            # a 10^8 job takes ~1 s: more repeats are cheap and tame the noise of a shared machine
            side["prime"] = client.prime_scaling(base, token, repeats=1 if a.quick else max(5, a.repeats), log=log)
        if "workloads" in phases:  # the media and data kinds against the same work done in this process
            from bench import workloads

            side["workloads"] = workloads.run(base, token, repeats=1 if a.quick else 3, log=log)
        if "durability" in phases:  # AOF always vs everysec on this stack's Redis
            from bench import durability

            side["durability"] = durability.run(stack, base, q, log)
        if "memory" in phases:
            side["memory"]["end"] = stack.memory()
        if "profile" in phases:
            from bench import profile

            job = client.run_job_demo(base)
            out_dir = a.results_dir / "profile" / f"{a.stamp}{'-' + a.label if a.label else ''}"
            side["profile"] = profile.profile_get(stack, base, f"/jobs/demo/{job}", out_dir,
                                                  seconds=5 if a.quick else 10, log=log)
        if "noisy" in phases:  # another user's big job against the demo; then the same on other stacks
            from bench import noisy

            side["noisy"] = {"stacks": {}}
            try:
                side["noisy"]["stacks"]["fair"] = noisy.run(stack, base, a.quick, log, name="fair", repeats=a.repeats,
                                                                   renice=a.noisy_renice)
            except Interrupted:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the other phases' figures; the other stacks still run
                log(f"[noisy:fair] failed: {type(exc).__name__}: {exc}")
                side["noisy"]["stacks"]["fair"] = {"error": f"{type(exc).__name__}: {exc}"[-3000:]}
        finished = True
    finally:
        with signals_held():
            if stack is not None:
                side["stop"] = stack.stop()
                side["cluster_up_log_tail"] = stack.log_tail(15)
                stack.cleanup()
            if code_dir and not finished:
                shutil.rmtree(code_dir, ignore_errors=True)
    try:
        if "noisy" in phases:  # one stack at a time: the main stack is stopped before these start
            run_noisy_stacks(a, side, code_dir)
    finally:
        if code_dir:
            shutil.rmtree(code_dir, ignore_errors=True)


def run_noisy_stacks(a, side: dict, code_dir: Path | None) -> None:
    """The noisy phase on a fresh stack per --noisy-stacks entry (the run's --env plus the entry's
    settings), each stopped before the next starts; one that fails is recorded and the next still runs."""
    from bench import noisy

    for name in a.noisy_stacks:
        env = {**a.stack_env, **EXTRA_STACKS[name]}
        entry = side["noisy"]["stacks"][name] = {"env": env}
        stack = None
        try:
            stack = start_stack(env, code_dir)
            entry["start_s"] = stack.start_s
            if a.replicas:
                stack.set_replicas(a.replicas)
            base = traffic_base(a, stack, stack.direct_ingress_ports())
            entry.update(noisy.run(stack, base, a.quick, log, name=name, repeats=a.repeats,
                                   renice=a.noisy_renice))
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the other stacks' figures
            log(f"[noisy:{name}] failed: {type(exc).__name__}: {exc}")
            entry["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
        finally:
            with signals_held():
                if stack is not None:
                    entry["stop"] = stack.stop()
                    if "error" in entry:
                        entry["cluster_up_log_tail"] = stack.log_tail(15)
                    stack.cleanup()


def start_stack(env: dict, code_dir: Path | None) -> ProjectStack:
    """A started stack; a failed start is retried once (e.g. "The current node timed out during startup"
    on a busy machine). A stack that did not start is stopped before this raises."""
    for attempt in (1, 2):
        stack = ProjectStack(env, log=log, code_dir=code_dir)
        try:
            stack.start()
            return stack
        except BaseException as exc:
            with signals_held():
                stack.stop()
                stack.cleanup()
            if attempt == 2 or not isinstance(exc, StackError):
                raise
            log(f"[project] start failed, retrying once: {str(exc).splitlines()[-1][:200]}")
    raise AssertionError("unreachable")


def traffic_base(a, stack: ProjectStack, direct_ports: list[int]) -> str:
    """Where the project's traffic goes: PORT, or with --target direct the replica's direct-ingress port."""
    if a.target != "direct":
        return stack.base_url
    if not direct_ports:
        raise RuntimeError("--target direct: no direct-ingress port found (RAY_SERVE_THROUGHPUT_OPTIMIZED is on in "
                           "both ingress modes; is the replica up?)")
    return f"http://127.0.0.1:{direct_ports[0]}"


def main(argv=None) -> int:
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_term)
    started = time.time()
    stamp = a.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    res = {"meta": {"date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "label": a.label, "quick": a.quick, "nproc": os.cpu_count(),
                    "loadavg_1m_start": client.loadavg(), "python": platform.python_version(),
                    "levers": {**a.stack_env, **stack_levers(a)},
                    "argv": sys.argv[1:], "phases": a.phases},
           "project": {}, "peer": {}}
    try:
        res["meta"]["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                   capture_output=True, text=True).stdout.strip()
        res["meta"]["code"] = a.code
        if a.code == "tree":  # read-only: which project files differ from HEAD
            res["meta"]["uncommitted"] = subprocess.run(
                ["git", "diff", "--name-only", "HEAD", "--", "serve_app", "compute", "cluster"], cwd=REPO,
                capture_output=True, text=True).stdout.split()
    except OSError:
        pass
    warn = ensure_wrk()
    if warn:
        log(warn)
        res["meta"]["warning"] = warn
    rc = 0
    try:
        if a.peer_from:
            prev = json.loads(a.peer_from.read_text())
            res["peer"] = prev.get("peer", {})
            res["meta"]["peer_from"] = f"{a.peer_from} ({prev.get('meta', {}).get('date_utc')})"
        elif a.skip_peer:
            res["peer"] = {"skipped": "--skip-peer"}
        else:
            try:
                run_peer(a, res)
            except (peer.PeerError, RuntimeError, subprocess.SubprocessError) as exc:
                log(f"[peer] failed: {exc}")
                res["peer"]["error"] = str(exc)[-3000:]
                rc = 1
        if a.skip_project:
            res["project"] = {"skipped": "--skip-project"}
        else:
            run_project(a, res)
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({type(exc).__name__}); everything started was stopped")
        res["meta"]["interrupted"] = True
        rc = 130
    except Exception as exc:  # keep what was measured, and say what broke
        log(f"error: {type(exc).__name__}: {exc}")
        res["meta"]["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
        rc = 1
    res["meta"]["loadavg_1m_end"] = client.loadavg()
    res["meta"]["wall_s"] = round(time.time() - started, 1)
    res["table"] = report.build_rows(res)
    table = report.render_table(res["table"])
    paths = report.save(res, a.results_dir, stamp, chart=not a.no_chart)
    print(table)
    print(f"\nload average (1 min) {res['meta']['loadavg_1m_start']} → {res['meta']['loadavg_1m_end']} on "
          f"{os.cpu_count()} cores; levers {res['meta']['levers']}; {res['meta']['wall_s']} s")
    if res["meta"].get("peer_from"):
        print(f"peer figures from {res['meta']['peer_from']}")
    print("saved: " + ", ".join(str(p) for p in paths.values()))
    return rc
