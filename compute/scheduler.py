"""Which waiting chunk goes into Ray next, and when: admission control, fair share, priorities.

Plain Python (no Ray, no Redis), so its order is tested in the fast tier. A runner shard gives it each
job's chunks as launch callbacks and says when a launched chunk has ended; it launches chunks while
fewer than ``capacity()`` are in flight. It keeps no state of its own worth saving: a job's record,
chunk inputs and finished chunk facts in Redis are the durable queue, and a restarted runner builds
this view again from them (``JobRunner.recover``).

The "fair" policy picks the next chunk by
1. priority: high, then normal, then low. A job that has waited ``aging_seconds`` since it last had a
   chunk launched counts one level higher per period, so low work never starves;
2. within a level, the owner with the least recent service: deficit round robin with a quantum of
   one chunk, kept as a virtual time per owner that grows by one per chunk launched. An owner that had
   nothing waiting joins at the lowest virtual time of those waiting (no credit is banked while idle),
   and ties go to the owner with fewer chunks in flight, so a newcomer's first chunk goes next;
3. within an owner, its jobs the same way.
It also keeps an interactive lane: chunks of small high-priority jobs that ask only for CPUs (the
runner says which) run on ``lane_slots`` extra slots (a long-lived actor that needs no CPU of its
own, so the OS time-slices it with the chunks already running). Such a chunk takes a regular slot
only while a CPU is idle (fewer regular chunks in flight than ``cpus()``): a regular slot on a busy
cluster is a place in Ray's queue behind chunks that run for a while, and the lane frees sooner.

"fifo" is the dispatch of earlier versions: every chunk into Ray at once, jobs in arrival order.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

PRIORITIES = ("high", "normal", "low")
RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
POLICIES = ("fair", "fifo")

# launch(lane): put one chunk into Ray, on the interactive lane or on a regular slot
Launch = Callable[[bool], None]
QUEUE_AHEAD_SECONDS = 0.1  # chunk work per CPU kept queued in Ray beyond the running chunk (default budget)
MIN_INFLIGHT_CHUNKS = 4  # the default budget's floor: demand an autoscaler sees on a cluster with no CPU yet


def default_budget(cpus: float, chunk_seconds: list[float | None]) -> int:
    """Chunks in Ray at once when MAX_INFLIGHT_CHUNKS is 0: one running per CPU plus, per CPU, about
    QUEUE_AHEAD_SECONDS of work of the queued job whose chunks run longest (``chunk_seconds``: each
    queued job's recent chunk run time, None before one of its chunks has finished): 1 to 32 chunks,
    at most 3 while a job's time is unknown; at least MIN_INFLIGHT_CHUNKS in all. Tiny chunks need
    many in flight to hide Ray's round trip; long ones few, so another job's chunk waits behind little."""
    known = [t for t in chunk_seconds if t is not None]
    ahead = min(32, max(1, math.ceil(QUEUE_AHEAD_SECONDS / max(max(known), 1e-4)))) if known else 3
    if None in chunk_seconds:
        ahead = min(ahead, 3)
    return max(MIN_INFLIGHT_CHUNKS, int(cpus * (1 + ahead)))


@dataclass(eq=False)
class _Job:
    job_id: str
    owner: str
    rank: int
    seq: int
    lane: bool
    waiting: deque
    since: float  # when it last had a chunk launched (or arrived): the start of its aging
    vtime: float = 0.0
    inflight: int = 0
    started: bool = False


@dataclass(eq=False)
class _Owner:
    vtime: float = 0.0
    inflight: int = 0
    jobs: dict[str, _Job] = field(default_factory=dict)

    def waiting(self) -> bool:
        return any(job.waiting for job in self.jobs.values())


class Dispatcher:
    def __init__(self, capacity: Callable[[], int], *, policy: str = "fair", aging_seconds: float = 10.0,
                 lane_slots: int = 0, cpus: Callable[[], float] = lambda: math.inf,
                 on_start: Callable[[str], None] = lambda job_id: None, clock: Callable[[], float] = time.monotonic):
        if policy not in POLICIES:
            raise ValueError(f"unknown scheduler policy {policy!r} (one of {', '.join(POLICIES)})")
        self.capacity = capacity if policy == "fair" else (lambda: math.inf)
        self.policy = policy
        self.aging = aging_seconds
        self.lane_slots = lane_slots if policy == "fair" else 0
        self.cpus = cpus  # regular chunks that run at once (this shard's CPUs); the rest queue in Ray
        self.on_start = on_start  # called once per job, when its first chunk is launched
        self.clock = clock
        self.jobs: dict[str, _Job] = {}
        self.owners: dict[str, _Owner] = {}
        self.inflight = 0
        self.lane_inflight = 0
        self._seq = itertools.count()

    # -- what the runner tells it --------------------------------------------------------------

    def add(self, job_id: str, owner: str, priority: str, launches: list[Launch], *, lane: bool = False) -> None:
        """Queue a job's chunks (in order); ``lane``: they run on the interactive lane (when the job
        is high priority), or on a regular slot while a CPU is idle. ``on_start(job_id)`` is called
        when its first chunk is launched."""
        account = self.owners.setdefault(owner, _Owner())
        if not account.waiting():  # back from idle: no credit for the time away
            waiting = [other.vtime for other in self.owners.values() if other.waiting()]
            account.vtime = max(account.vtime, min(waiting, default=account.vtime))
        job = _Job(job_id, owner, RANK[priority], next(self._seq), lane and priority == "high",
                   deque(launches), self.clock())
        job.vtime = min((other.vtime for other in account.jobs.values() if other.waiting), default=0.0)
        account.jobs[job_id] = job
        self.jobs[job_id] = job
        self.pump()

    def ended(self, job_id: str, lane: bool = False) -> None:
        """One launched chunk of the job has ended (any outcome): its slot is free."""
        if lane:
            self.lane_inflight -= 1
        else:
            self.inflight -= 1
        job = self.jobs.get(job_id)
        if job is not None:
            job.inflight -= 1
            self.owners[job.owner].inflight -= 1
            self._tidy(job)
        self.pump()

    def drop(self, job_id: str) -> int:
        """Forget a job's waiting chunks (it ended, failed or was cancelled); returns how many.
        Its chunks in flight keep their slots until they end."""
        job = self.jobs.get(job_id)
        if job is None:
            return 0
        dropped = len(job.waiting)
        job.waiting.clear()
        self._tidy(job)
        return dropped

    # -- dispatch --------------------------------------------------------------------------------

    def pump(self) -> None:
        """Launch chunks while there are slots (lane first for the chunks that may use it)."""
        while self.lane_inflight < self.lane_slots:
            job = self._pick(lane=True)
            if job is None:
                break
            self._launch(job, lane=True)
        while self.inflight < self.capacity():
            job = self._pick(lane=False, interactive=self.lane_slots == 0 or self.inflight < self.cpus())
            if job is None:
                break
            self._launch(job, lane=False)

    def _launch(self, job: _Job, lane: bool) -> None:
        launch = job.waiting.popleft()
        owner = self.owners[job.owner]
        job.inflight += 1
        owner.inflight += 1
        job.vtime += 1
        owner.vtime += 1
        job.since = self.clock()
        if lane:
            self.lane_inflight += 1
        else:
            self.inflight += 1
        if not job.started:
            job.started = True
            self.on_start(job.job_id)
        launch(lane)

    def _pick(self, lane: bool, interactive: bool = True):
        """The next job to launch a chunk of: on the lane only lane jobs; on a regular slot every job,
        lane jobs only when ``interactive``."""
        candidates = [job for job in self.jobs.values()
                      if job.waiting and (job.lane if lane else interactive or not job.lane)]
        if not candidates:
            return None
        if self.policy == "fifo":
            return min(candidates, key=lambda job: job.seq)
        now = self.clock()
        best = min(self._rank(job, now) for job in candidates)
        level = [job for job in candidates if self._rank(job, now) == best]
        owner = min({job.owner for job in level},
                    key=lambda name: (self.owners[name].vtime, self.owners[name].inflight, name))
        return min((job for job in level if job.owner == owner), key=lambda job: (job.vtime, job.seq))

    def _rank(self, job: _Job, now: float) -> int:
        """The job's priority level, raised one level per aging period it has waited."""
        boost = int((now - job.since) // self.aging) if self.aging > 0 else 0
        return max(0, job.rank - boost)

    def _tidy(self, job: _Job) -> None:
        if not job.waiting and job.inflight <= 0:
            self.jobs.pop(job.job_id, None)
            owner = self.owners[job.owner]
            owner.jobs.pop(job.job_id, None)
            if not owner.jobs and owner.inflight <= 0:
                # forgotten once idle; it comes back at the lowest virtual time anyway
                self.owners.pop(job.owner, None)

    # -- what it shows ---------------------------------------------------------------------------

    def queued(self) -> dict[str, int]:
        """Waiting chunks per priority (by the job's own priority, not its aged level)."""
        counts = dict.fromkeys(PRIORITIES, 0)
        for job in self.jobs.values():
            counts[PRIORITIES[job.rank]] += len(job.waiting)
        return counts

    def positions(self) -> dict[str, tuple[int, int]]:
        """For each job not started yet: (its place among those, 1 = next; chunks waiting ahead of it),
        in the order it would be served now (approximate: arrivals and aging change it)."""
        now = self.clock()
        order = sorted(self.jobs.values(), key=lambda job: (self._rank(job, now), job.seq)
                       if self.policy == "fair" else job.seq)
        places: dict[str, tuple[int, int]] = {}
        ahead = 0
        for job in order:
            if not job.started:
                places[job.job_id] = (len(places) + 1, ahead)
            ahead += len(job.waiting)
        return places
