"""The replica's one subscription to job change events, shared by everything that follows jobs.

A replica reads every job's change events through a single Redis pattern subscription
(``compute.storage.events.all_job_events``). Each event first invalidates the replica's status cache,
then goes to the in-process subscribers of that job and of its owner. A subscriber has a bounded
queue: one that falls behind (a slow client) loses its queued events and gets a ``RESYNC`` marker
instead, so memory never grows with a slow reader and the reader knows to re-read what it shows.
Subscribers also get ``RESYNC`` after the subscription to Redis was lost and is back (events may
have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Optional, Union

from compute.retrying import until_redis_answers
from compute.storage.events import JobEvent, all_job_events
from compute.storage.jobs import JobStore
from serve_app.status_cache import StatusCache

QUEUE_SIZE = 256
log = logging.getLogger(__name__)


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC = _Resync()
Item = Union[JobEvent, _Resync]


class Subscription:
    """Events for one job or one owner, in order, until closed (use as a context manager)."""

    def __init__(self, hub: "EventHub", key: tuple[str, str], size: int):
        self._hub, self._key = hub, key
        self._queue: asyncio.Queue[Item] = asyncio.Queue(size)
        self.dropped = 0  # events lost to overflow (each overflow also queues RESYNC)

    def offer(self, item: Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self.dropped += self._queue.get_nowait() is not RESYNC
            self._queue.put_nowait(RESYNC)

    async def next_batch(self, timeout: float) -> list[Item]:
        """Everything queued, waiting up to ``timeout`` s for the first item; [] on silence.
        Taking all at once lets a reader coalesce a burst into one read of Redis."""
        if self._queue.empty():
            try:
                async with asyncio.timeout(timeout):
                    first = await self._queue.get()
            except TimeoutError:
                return []
            items = [first]
        else:
            items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def close(self) -> None:
        self._hub._remove(self._key, self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventHub:
    def __init__(self, statuses: StatusCache, queue_size: int = QUEUE_SIZE):
        self.statuses = statuses
        self.queue_size = queue_size
        self._subscribers: dict[tuple[str, str], set[Subscription]] = defaultdict(set)
        self.connected = False
        self._was_connected = False
        self.events_seen = 0
        self.last_event_at: Optional[float] = None

    # -- subscribers ----------------------------------------------------------------------------

    def follow_job(self, job_id: str) -> Subscription:
        return self._add(("job", job_id))

    def follow_owner(self, owner: str) -> Subscription:
        return self._add(("owner", owner))

    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def _add(self, key: tuple[str, str]) -> Subscription:
        subscription = Subscription(self, key, self.queue_size)
        self._subscribers[key].add(subscription)
        return subscription

    def _remove(self, key: tuple[str, str], subscription: Subscription) -> None:
        subs = self._subscribers.get(key)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._subscribers[key]

    # -- fan-out --------------------------------------------------------------------------------

    def dispatch(self, event: JobEvent) -> None:
        """Invalidate the cached status, then hand the event to the job's and the owner's readers."""
        self.events_seen += 1
        self.last_event_at = time.monotonic()
        self.statuses.changed(event.job_id)
        targets = list(self._subscribers.get(("job", event.job_id), ()))
        if event.owner is not None:
            targets += self._subscribers.get(("owner", event.owner), ())
        for subscription in targets:
            subscription.offer(event)

    def _resync_all(self) -> None:
        for subs in list(self._subscribers.values()):
            for subscription in list(subs):
                subscription.offer(RESYNC)

    async def run(self, store: JobStore) -> None:
        """Follow every job's change events until cancelled, resubscribing after Redis errors."""
        async for attempt in until_redis_answers(log, "the job event listener"):
            with attempt:
                await self._follow(store)

    async def _follow(self, store: JobStore) -> None:
        try:
            async for event in all_job_events(store.redis, store.keys):
                if event is not None:
                    self.dispatch(event)
                elif not self.connected:
                    self.connected = True
                    self.statuses.listening = True
                    if self._was_connected:  # events may have been missed while away
                        self._resync_all()
                    self._was_connected = True
        finally:
            self.connected = False
            self.statuses.stop_listening()
