"""Let Ray's worker processes write their coverage data before the test session's Ray goes away.

Ray stops workers with SIGKILL at shutdown, which skips coverage's exit hook; a SIGTERM first makes
each worker raise SystemExit, so coverage (started in workers by its subprocess patch) saves.
"""

import time

import psutil

AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def ray_worker_processes() -> list[psutil.Process]:
    """Python workers (tasks and actors) of the Ray instance this process started: the children,
    titled ``ray::...``, of our own raylet (other Ray instances on the machine are left alone)."""
    workers = []
    for raylet in psutil.Process().children():
        if raylet.name() != "raylet":
            continue
        for proc in raylet.children():
            title = (proc.cmdline() or [""])[0]
            if title.startswith("ray::") and not title.startswith(AGENTS):
                workers.append(proc)
    return workers


def stop_workers_gracefully(timeout: float = 15) -> None:
    workers = ray_worker_processes()
    for proc in workers:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    psutil.wait_procs(workers, timeout=timeout)
    time.sleep(0.2)
