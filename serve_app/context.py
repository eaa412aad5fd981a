"""The long-lived objects one replica shares between requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Optional

from compute.artifacts import ArtifactStore
from compute.runner import find_runner, get_runner
from compute.storage.accounts import AccountStore
from compute.storage.counters import SharedCounters
from compute.storage.guards import IdempotencyKeys
from compute.storage.jobs import JobStore
from serve_app.http_metrics import HttpMetrics
from serve_app.live_events import EventHub
from serve_app.rate_limits import RateLimiter
from serve_app.settings import Settings
from serve_app.status_cache import StatusCache


@dataclass
class AppContext:
    settings: Settings
    store: JobStore
    accounts: AccountStore
    idempotency: IdempotencyKeys
    limiter: RateLimiter
    metrics: HttpMetrics
    artifacts: Optional[ArtifactStore] = None
    jwks_client: Optional[Any] = None
    statuses: StatusCache = field(default_factory=StatusCache)
    events: EventHub = field(init=False)  # the replica's one subscription to job change events
    _runner: Any = field(default=None, repr=False)

    def __post_init__(self):
        self.events = EventHub(self.statuses)

    @classmethod
    def create(cls, settings: Settings) -> "AppContext":
        prefix = settings.redis_key_prefix
        store = JobStore(settings.redis_url, settings.job_ttl_seconds, key_prefix=prefix)
        jwks_client = None
        if settings.jwt_jwks_url:
            from serve_app.security import make_jwks_client

            jwks_client = make_jwks_client(settings.jwt_jwks_url)
        return cls(
            settings=settings,
            store=store,
            accounts=AccountStore(store.redis, key_prefix=prefix),
            idempotency=IdempotencyKeys(store.redis, settings.job_ttl_seconds, key_prefix=prefix),
            limiter=RateLimiter(settings.redis_url, settings.rate_limit_enabled, key_prefix=prefix),
            metrics=HttpMetrics(SharedCounters(store.redis, key_prefix=prefix)),
            artifacts=ArtifactStore.from_settings(settings),
            jwks_client=jwks_client,
        )

    async def runner(self):
        """The job runner actor's handle, creating the actor if needed: for startup and submissions."""
        if self._runner is None:
            self._runner = await asyncio.to_thread(get_runner)  # a blocking call to Ray's GCS
        return self._runner

    async def hand_off(self, job_id: str) -> None:
        """Give an accepted job to the runner (``compute.submission.accept`` bounds the wait)."""
        runner = await self.runner()
        await runner.submit.remote(job_id)

    async def existing_runner(self):
        """The runner's handle without creating it (ValueError if there is none): for reads."""
        if self._runner is None:
            self._runner = await asyncio.to_thread(find_runner)
        return self._runner

    async def close(self) -> None:
        await self.store.close()
