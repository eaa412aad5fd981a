"""Job status bodies kept in the replica, ready to send.

Pollers read a job's status many times while it runs and after it ends, so a replica keeps the
serialised body:

- a finished job never changes: its body is kept for ``FINISHED_TTL_SECONDS``;
- a pending or running job changes only through writes that also publish on the job's events
  channel (``compute/storage/jobs.py``). The replica's event hub (``live_events.py``) follows every
  job's channel and drops the entry when an event arrives; an entry is stored only if no event for
  that job arrived while it was being read, only while the hub is subscribed, and for at most
  ``LIVE_TTL_SECONDS`` in case an event is lost. A read can so lag a write by the pub/sub delivery time (about a millisecond).

Entries also expire, so a record that Redis drops (its TTL, a deleted account) does not outlive
it here by more than a minute.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from cachetools import TTLCache

from compute.records import JobRecord

FINISHED_TTL_SECONDS = 60.0
LIVE_TTL_SECONDS = 2.0
MAX_ENTRIES = 10_000


class CachedStatus(NamedTuple):
    owner: str
    body: bytes


class StatusCache:
    def __init__(self):
        self._finished: TTLCache = TTLCache(maxsize=MAX_ENTRIES, ttl=FINISHED_TTL_SECONDS)
        self._live: TTLCache = TTLCache(maxsize=MAX_ENTRIES, ttl=LIVE_TTL_SECONDS)
        self._seen = 0  # change events seen so far
        self._last_change: TTLCache = TTLCache(maxsize=10 * MAX_ENTRIES, ttl=10 * LIVE_TTL_SECONDS)
        self.listening = False

    def get(self, job_id: str) -> Optional[CachedStatus]:
        return self._finished.get(job_id) or self._live.get(job_id)

    def mark(self) -> int:
        """Call before reading a job from Redis; pass the result to ``remember``."""
        return self._seen

    def remember(self, record: JobRecord, body: bytes, mark: int) -> None:
        entry = CachedStatus(record.owner, body)
        if record.status.terminal:
            self._finished[record.job_id] = entry
        elif self.listening and self._last_change.get(record.job_id, 0) <= mark:
            self._live[record.job_id] = entry

    def changed(self, job_id: str) -> None:
        self._seen += 1
        self._last_change[job_id] = self._seen
        self._live.pop(job_id, None)

    def stop_listening(self) -> None:
        """The change events stopped (Redis lost): live entries can no longer be trusted."""
        self.listening = False
        self._live.clear()
