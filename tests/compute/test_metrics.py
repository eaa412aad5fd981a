"""Custom Ray metrics (compute.metrics), read back from Ray's Prometheus endpoint.

Every Ray node runs a metrics agent that serves all of its processes' metrics on
``metrics_export_port``; workers push their values to it every ``metrics_report_interval_ms``
(10 s by default), so each check polls until the values arrive.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from compute import metrics
from tests.support.jobs import wait_for_job

# Worker ids whose ``active_jobs`` gauge was set by a test, not by the job runner.
_test_gauge_workers: set[str] = set()


def report_interval_s() -> float:
    import ray

    return max(1000, ray._config.metrics_report_interval_ms()) / 1000


def scrape() -> list[tuple[str, dict, float]]:
    import ray

    node = ray._private.worker._global_node
    text = httpx.get(f"http://{node.node_ip_address}:{node.metrics_export_port}/metrics", timeout=10).text
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name.startswith("ray_" + metrics.PREFIX)]


def total(samples, name: str, **labels) -> float:
    """Sum of a metric over every process (series differ by WorkerId) whose labels match."""
    return sum(value for sample, tags, value in samples
               if sample == name and all(tags.get(k) == v for k, v in labels.items()))


def bucket(samples, name: str, le: float, **labels) -> float:
    return sum(value for sample, tags, value in samples if sample == name + "_bucket"
               and float(tags["le"]) == le and all(tags.get(k) == v for k, v in labels.items()))


def wait_for(check, timeout: float):
    """Scrape until ``check(samples)`` is true; return the samples (or fail with the last ones)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape()
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            mine = "\n".join(f"{n} {t} {v}" for n, t, v in samples)
            raise AssertionError(f"metrics not as expected after {timeout:g} s:\n{mine}")
        time.sleep(0.5)


def test_metric_functions_are_exported_with_their_values(ray_session):
    import ray

    kind = f"metrics-test-{uuid.uuid4().hex[:8]}"  # a kind no job uses: exact values

    @ray.remote(num_cpus=0)
    def record(kind: str) -> str:
        from compute import metrics
        from compute.records import JobStatus

        metrics.job_submitted(kind)
        metrics.job_submitted(kind)
        metrics.job_finished(kind, "completed", 1.5)
        metrics.job_finished(kind, JobStatus.failed, 0.2)  # the enum works too
        metrics.job_finished(kind, "cancelled")  # no duration: counted, not observed
        metrics.chunks_completed(kind, [0.03, 0.04])
        metrics.chunks_completed(kind, [7.0])
        metrics.chunks_completed(kind, [])  # nothing
        metrics.set_active_jobs(3)
        return ray.get_runtime_context().get_worker_id()

    worker_id = ray.get(record.remote(kind))
    _test_gauge_workers.add(worker_id)
    p = "ray_" + metrics.PREFIX
    samples = wait_for(lambda s: total(s, p + "chunks_completed_total", kind=kind) == 3
                       and total(s, p + "jobs_finished_total", kind=kind) == 3, timeout=4 * report_interval_s() + 10)
    assert total(samples, p + "jobs_submitted_total", kind=kind) == 2
    for status, count in (("completed", 1), ("failed", 1), ("cancelled", 1)):
        assert total(samples, p + "jobs_finished_total", kind=kind, status=status) == count
    # histograms: counts per bucket (Ray exports a bucket-midpoint estimate as _sum, so it is not checked)
    chunk = p + "chunk_duration_seconds"
    assert total(samples, chunk + "_count", kind=kind) == 3
    assert bucket(samples, chunk, 0.025, kind=kind) == 0
    assert bucket(samples, chunk, 0.05, kind=kind) == 2
    assert bucket(samples, chunk, 5, kind=kind) == 2
    assert bucket(samples, chunk, 10, kind=kind) == 3
    assert bucket(samples, chunk, float("inf"), kind=kind) == 3
    job = p + "job_duration_seconds"
    assert total(samples, job + "_count", kind=kind, status="completed") == 1
    assert bucket(samples, job, 1, kind=kind, status="completed") == 0
    assert bucket(samples, job, 2.5, kind=kind, status="completed") == 1
    assert bucket(samples, job, 0.25, kind=kind, status="failed") == 1
    assert total(samples, job + "_count", kind=kind, status="cancelled") == 0
    assert total(samples, p + "active_jobs", WorkerId=worker_id) == 3


def test_metric_functions_are_no_ops_outside_ray(monkeypatch):
    import ray

    monkeypatch.setattr(metrics, "_metrics", None)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    metrics.job_submitted("x")
    metrics.job_finished("x", "completed", 1.0)
    metrics.chunks_completed("x", [0.1])
    metrics.set_active_jobs(1)
    assert metrics._get() is None


def settled_scrape(interval: float, timeout: float = 60) -> list[tuple[str, dict, float]]:
    """A scrape once two, a full report interval apart, agree: every value counted before the
    first has been pushed by then (each process pushes its values every interval)."""
    def key(samples):
        return sorted((name, sorted(tags.items()), value) for name, tags, value in samples)

    deadline = time.monotonic() + timeout
    last = scrape()
    while True:
        time.sleep(interval + 0.25)  # the poll interval: one report interval between the two scrapes
        samples = scrape()
        if key(samples) == key(last):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics still changing after {timeout} s")
        last = samples


def runner_records_metrics() -> bool:
    import compute.runner

    return hasattr(compute.runner, "metrics")


@pytest.mark.skipif(not runner_records_metrics(), reason="compute/runner.py does not call compute.metrics yet")
def test_a_job_run_by_the_runner_is_counted(ray_session, api, user):
    import ray

    from compute.runner import get_runner

    p = "ray_" + metrics.PREFIX
    interval = report_interval_s()
    runner = get_runner()
    deadline = time.monotonic() + 60
    while ray.get(runner.active_jobs.remote()):  # a quiet runner: its counters stop moving ...
        assert time.monotonic() < deadline, "the runner never became idle"
        time.sleep(0.2)
    before = settled_scrape(interval)  # ... and what it counted so far has been exported

    def delta(samples, name, **labels):
        return total(samples, name, **labels) - total(before, name, **labels)

    n, chunks = 4000, 2  # sleepy_sum: two 2 s chunks
    response = api.post("/jobs", json={"n": n, "chunks": chunks, "kind": "sleepy_sum"}, headers=user["headers"])
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    def runner_gauge(samples) -> float:
        return sum(v for name, tags, v in samples
                   if name == p + "active_jobs" and tags.get("WorkerId") not in _test_gauge_workers)

    if interval <= 1:  # the job lasts long enough for the gauge to be exported while it runs
        wait_for(lambda s: runner_gauge(s) >= 1, timeout=10)
    job = wait_for_job(api, f"/jobs/{job_id}", headers=user["headers"], timeout=60)
    assert job["status"] == "completed" and job["result"] == n * (n + 1) // 2

    after = wait_for(lambda s: delta(s, p + "chunks_completed_total", kind="sleepy_sum") >= chunks
                     and delta(s, p + "jobs_finished_total", kind="sleepy_sum", status="completed") >= 1
                     and runner_gauge(s) == 0, timeout=4 * interval + 10)
    assert delta(after, p + "jobs_submitted_total", kind="sleepy_sum") == 1
    assert delta(after, p + "jobs_finished_total", kind="sleepy_sum", status="completed") == 1
    assert delta(after, p + "chunks_completed_total", kind="sleepy_sum") == chunks
    assert delta(after, p + "chunk_duration_seconds_count", kind="sleepy_sum") == chunks
    # each chunk slept 2 s: both fall in the (1, 2.5] bucket
    chunk = p + "chunk_duration_seconds"
    assert bucket(after, chunk, 2.5, kind="sleepy_sum") - bucket(before, chunk, 2.5, kind="sleepy_sum") == chunks
    assert bucket(after, chunk, 1, kind="sleepy_sum") - bucket(before, chunk, 1, kind="sleepy_sum") == 0
    job_count = p + "job_duration_seconds_count"
    assert delta(after, job_count, kind="sleepy_sum", status="completed") == 1
