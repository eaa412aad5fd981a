"""The long-lived objects one replica shares between requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Optional

from compute.artifacts import ArtifactStore
from compute.runner import find_runners, get_runner, get_runners, shard_of
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
    _runners: dict = field(default_factory=dict, repr=False)  # shard -> handle, created or found once

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

    async def runner(self, job_id: str):
        """The handle of the runner shard of a job, creating the actor if needed: for submissions."""
        shard = shard_of(job_id, self.settings.runner_shards)
        if shard not in self._runners:
            self._runners[shard] = await asyncio.to_thread(get_runner, job_id)  # a blocking call to Ray's GCS
        return self._runners[shard]

    async def all_runners(self) -> list:
        """Every shard's handle, creating those that do not exist: for startup."""
        runners = await asyncio.to_thread(get_runners)
        self._runners.update(enumerate(runners))
        return runners

    async def hand_off(self, job_id: str) -> None:
        """Give an accepted job to its runner shard (``compute.submission.accept`` bounds the wait)."""
        runner = await self.runner(job_id)
        await runner.submit.remote(job_id)

    async def existing_runners(self) -> list:
        """Every shard's handle without creating any (ValueError if one is missing): for reads."""
        if len(self._runners) < self.settings.runner_shards:
            self._runners.update(enumerate(await asyncio.to_thread(find_runners)))
        return [self._runners[i] for i in range(self.settings.runner_shards)]

    async def close(self) -> None:
        await self.store.close()
