"""Prometheus metrics of the service (``GET /metrics``), the same through any replica.

A replica counts each request in memory (a few dict increments) and adds its deltas to Redis about
once a second (``compute/storage/counters.py``), so the exposition is the sum over every replica:
requests by route template, method and status, a latency histogram per route, rate-limit
rejections and idempotent replays. Jobs submitted and finished by kind and status come from the
counters the storage scripts keep with every job write (every way in: HTTP and ``cluster.batch``).
Rendered with prometheus-client's exposition format; Ray's own metrics stay on Ray's endpoint.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import defaultdict

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError

from compute.storage.counters import SharedCounters

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_SECONDS = 1.0
PREFIX = "rayjobs_"
log = logging.getLogger(__name__)


def _field(name: str, labels: dict) -> str:
    return orjson.dumps([name, labels], option=orjson.OPT_SORT_KEYS).decode()


class HttpMetrics:
    def __init__(self, counters: SharedCounters):
        self.counters = counters
        self.pending: defaultdict[str, float] = defaultdict(float)

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        self.pending[_field(name, labels)] += amount

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.count("requests", route=route, method=method, status=str(status))
        index = bisect.bisect_left(BUCKETS, seconds)
        self.count("duration_bucket", route=route, le=str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf")
        self.count("duration_sum", seconds, route=route)

    async def flush(self) -> None:
        """Add what was counted since the last flush to the shared counters (kept for the next try
        if Redis is away, so nothing is lost)."""
        deltas, self.pending = self.pending, defaultdict(float)
        try:
            await self.counters.add(deltas)
        except BaseException:
            for field, delta in deltas.items():
                self.pending[field] += delta
            raise

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except RedisError as exc:
                log.warning("metrics not flushed (%s); kept for the next flush", type(exc).__name__)


class MetricsMiddleware:
    """Times every HTTP request; the route label is the matched route's template (``/jobs/{job_id}``
    for ``/jobs/<id>`` and ``/v1/jobs/<id>`` alike), ``unmatched`` for paths no route serves."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            ctx = getattr(scope["app"].state, "ctx", None)
            if ctx is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                ctx.metrics.observe_request(route, scope["method"], status, time.perf_counter() - started)


def _labelled(fields: dict[str, float], name: str):
    for field, value in fields.items():
        field_name, labels = orjson.loads(field)
        if field_name == name:
            yield labels, value


def render(http: dict[str, float], job_counters: dict[str, int], active_jobs: int) -> bytes:
    """The Prometheus text exposition of the summed HTTP counters and the job counters."""
    requests = CounterMetricFamily(PREFIX + "http_requests", "HTTP requests by route template, method and status.",
                                   labels=["route", "method", "status"])
    for labels, value in _labelled(http, "requests"):
        requests.add_metric([labels["route"], labels["method"], labels["status"]], value)
    durations = HistogramMetricFamily(PREFIX + "http_request_duration_seconds",
                                      "Time to answer an HTTP request, by route template.", labels=["route"])
    by_route: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, value in _labelled(http, "duration_bucket"):
        by_route[labels["route"]][labels["le"]] = value
    sums = {labels["route"]: value for labels, value in _labelled(http, "duration_sum")}
    for route, counts in sorted(by_route.items()):
        cumulative, buckets = 0.0, []
        for le in [*map(str, BUCKETS), "+Inf"]:
            cumulative += counts.get(le, 0.0)
            buckets.append((le, cumulative))
        durations.add_metric([route], buckets, sums.get(route, 0.0))
    limited = CounterMetricFamily(PREFIX + "rate_limited", "Requests refused by a rate limit (429).", labels=["limit"])
    for labels, value in _labelled(http, "rate_limited"):
        limited.add_metric([labels["limit"]], value)
    replays = CounterMetricFamily(PREFIX + "idempotent_replays", "Submissions answered from an Idempotency-Key.")
    replays.add_metric([], sum(value for _, value in _labelled(http, "idempotent_replays")))
    submitted = CounterMetricFamily(PREFIX + "jobs_submitted", "Jobs accepted, by kind.", labels=["kind"])
    finished = CounterMetricFamily(PREFIX + "jobs_finished", "Jobs finished, by kind and status.",
                                   labels=["kind", "status"])
    for field, value in sorted(job_counters.items()):
        what, _, rest = field.partition(":")
        if what == "submitted":
            submitted.add_metric([rest], value)
        elif what == "finished":
            kind, _, status = rest.rpartition(":")
            finished.add_metric([kind, status], value)
    active = GaugeMetricFamily(PREFIX + "jobs_active", "Jobs pending or running now.", value=active_jobs)

    class Snapshot:
        def collect(self):
            yield from (requests, durations, limited, replays, submitted, finished, active)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry)
