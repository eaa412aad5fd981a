"""Finished jobs kept in the replica, ready to send.

A job in a terminal state never changes again, so its status reads need neither a Redis round
trip nor a fresh serialisation; polling clients read a job many times after it ends. Entries
expire after a while anyway, so a record that Redis drops (its TTL, a deleted account) does not
outlive it here by more than that.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

from cachetools import TTLCache

from compute.records import JobRecord


class FinishedJob(NamedTuple):
    owner: str
    body: bytes


class FinishedJobs:
    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 60.0):
        self._entries: TTLCache = TTLCache(maxsize=max_entries, ttl=ttl_seconds)

    def get(self, job_id: str) -> Optional[FinishedJob]:
        return self._entries.get(job_id)

    def remember(self, record: JobRecord, body: bytes) -> None:
        if record.status.terminal:
            self._entries[record.job_id] = FinishedJob(record.owner, body)
