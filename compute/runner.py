"""The job runner: fans a job out into one Ray task per chunk, then combines and records it.

It runs as one detached async actor, so jobs keep running when an HTTP replica restarts, and
on (re)start it resumes every job Redis still lists as pending or running, reusing chunks
that had already finished.
"""

from __future__ import annotations

import asyncio
import logging
import time

import ray
from ray.exceptions import RayError, RayTaskError

from compute import metrics
from compute.config import get_compute_settings
from compute.kinds import ChunkSpec, UnknownKind, get_kind
from compute.progress import PROGRESS_INTERVAL_SECONDS, get_tracker
from compute.records import ChunkFact, JobRecord, JobStatus
from compute.storage.jobs import JobStore, RedisError
from compute.tasks import run_chunk, warm_up

RUNNER_NAME = "job-runner"
SWEEP_SECONDS = 15.0
REDIS_RETRY_FIRST_DELAY = 0.2
REDIS_RETRY_MAX_DELAY = 5.0
log = logging.getLogger(__name__)


class JobFailed(Exception):
    pass


def describe_chunk_error(spec: ChunkSpec, exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    text = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
    return f"Chunk {spec.index} (range {spec.start}..{spec.end}) failed: {text}"


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobRunner:
    def __init__(self):
        self.settings = get_compute_settings()
        self.store = JobStore(self.settings.redis_url, self.settings.job_ttl_seconds,
                              key_prefix=self.settings.redis_key_prefix)
        self.tracker = get_tracker()
        self.jobs: dict[str, asyncio.Task] = {}
        self.recovered = False

    async def recover(self) -> int:
        """Resume every job that Redis lists as active and this runner is not running; from then on,
        look again every SWEEP_SECONDS, so an accepted job whose hand-off was lost still runs."""
        if not self.recovered:
            self.recovered = True
            loop = asyncio.get_running_loop()
            loop.create_task(self._sweep_forever())
            loop.create_task(self._warm_up())
        resumed = 0
        for job_id in await self.store.active_job_ids():
            if job_id not in self.jobs:
                self._start(job_id)
                resumed += 1
        if resumed:
            log.info("recovery pass resumed %d job(s)", resumed)
        return resumed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.recover()
            except RedisError as exc:
                log.warning("sweep skipped: %s", type(exc).__name__)

    @staticmethod
    async def _warm_up() -> None:
        """Have Ray start one worker per free CPU now, so the first chunks do not wait seconds for
        processes. Only CPUs already in the cluster: this must never make an autoscaler add a node."""
        cpus = int(ray.available_resources().get("CPU", 0))
        try:
            await asyncio.gather(*[warm_up.remote() for _ in range(cpus)])
        except RayError as exc:
            log.warning("worker warm-up failed: %s", type(exc).__name__)

    async def submit(self, job_id: str) -> None:
        if not self.recovered:
            await self.recover()
        if job_id not in self.jobs:
            self._start(job_id)

    async def cancel(self, job_id: str, detail: str) -> bool:
        """Stop a job's tasks and mark it cancelled; False if it had already finished."""
        task = self.jobs.get(job_id)
        if task is not None:
            task.cancel(detail)
            try:
                await task
            except asyncio.CancelledError:
                pass
        record = await self.store.get_job(job_id)
        if record is None or record.status.terminal:
            return record is not None and record.status is JobStatus.cancelled and task is not None
        return await self._finish(record, JobStatus.cancelled, detail=detail)

    async def active_jobs(self) -> list[str]:
        return sorted(self.jobs)

    def _start(self, job_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run_until_recorded(job_id))
        self.jobs[job_id] = task
        metrics.set_active_jobs(len(self.jobs))
        task.add_done_callback(lambda _: self._forget(job_id))

    def _forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        metrics.set_active_jobs(len(self.jobs))

    async def _finish(self, record: JobRecord, status: JobStatus, **fields) -> bool:
        finished = await self.store.finish(record, status, **fields)
        if finished:
            metrics.job_finished(record.kind, status.value, time.time() - record.created_at)
        return finished

    async def _run_until_recorded(self, job_id: str) -> None:
        """Run a job; while Redis is away, wait and resume, so an accepted job always ends recorded."""
        delay = REDIS_RETRY_FIRST_DELAY
        while True:
            try:
                return await self._run(job_id)
            except RedisError as exc:
                log.warning("job %s waits for Redis (%s)", job_id, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REDIS_RETRY_MAX_DELAY)

    async def _until_stored(self, write) -> bool:
        """Retry a state write while Redis is unreachable (the computed result must not be lost)."""
        delay = REDIS_RETRY_FIRST_DELAY
        while True:
            try:
                return await write()
            except RedisError as exc:
                log.warning("retrying a job state write (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REDIS_RETRY_MAX_DELAY)

    async def _run(self, job_id: str) -> None:
        started, record, stored = await self.store.start_job(job_id)
        if record is None or record.status.terminal:
            await self.store.forget_active(job_id)
            return
        if started:
            metrics.job_submitted(record.kind)
        try:
            kind = get_kind(record.kind)
        except UnknownKind:
            await self._finish(record, JobStatus.failed, detail=f"Unknown job kind {record.kind!r}.")
            return
        specs = kind.split(record.n, record.chunks)
        done = {i: f for i, f in stored.items() if f.status == "completed"}
        # One task name per kind: Ray keeps per-name task metrics in every process (and in the
        # metrics agent), so a name per job or chunk grew memory without bound (~100 KB per job).
        chunk_task = run_chunk.options(name=f"chunk:{kind.name}", max_retries=self.settings.chunk_max_retries)
        futures = {}
        for spec in specs:
            if spec.index in done:
                continue
            ref = chunk_task.remote(kind.name, job_id, spec.index, spec.start, spec.end)
            futures[asyncio.wrap_future(ref.future())] = (spec, ref)
            if len(futures) % 100 == 0:
                await asyncio.sleep(0)  # a big job's fan-out must not stall the other jobs' progress
        timeout = self.settings.job_timeout_seconds or kind.timeout_seconds
        facts: dict[int, ChunkFact] = {}
        try:
            await self._collect(record, futures, facts, time.monotonic() + timeout, timeout)
        except asyncio.CancelledError as stop:
            self._cancel_refs(futures)
            detail = stop.args[0] if stop.args else "Cancelled."
            await self._until_stored(lambda: self._finish(record, JobStatus.cancelled, detail=detail,
                                                               facts=facts.values()))
            raise
        except JobFailed as failure:
            self._cancel_refs(futures)
            reason = str(failure)
            await self._until_stored(lambda: self._finish(record, JobStatus.failed, detail=reason,
                                                               facts=facts.values()))
            return
        result = kind.combine([(done | facts)[spec.index].result for spec in specs])
        await self._until_stored(lambda: self._finish(
            record, JobStatus.completed, result=result, detail="Computation finished successfully.",
            facts=facts.values(),
        ))

    async def _collect(self, record: JobRecord, futures: dict, facts: dict, deadline: float,
                       timeout: float) -> None:
        """Gather chunk results until all are in; meanwhile send the tracker what finished, in
        batches at most every PROGRESS_INTERVAL_SECONDS (the final write records the last ones).

        Finished futures arrive through a queue: ``asyncio.wait`` over the pending set would cost
        O(chunks) per wake-up, O(chunks²) per job."""
        finished: asyncio.Queue = asyncio.Queue()
        for future in futures:
            future.add_done_callback(finished.put_nowait)
        remaining = len(futures)
        unreported: list[dict] = []
        next_report = time.monotonic() + PROGRESS_INTERVAL_SECONDS  # a job done by then needs no report
        while remaining:
            now = time.monotonic()
            if now >= deadline:
                raise JobFailed(f"Job exceeded its time budget of {timeout:g} s and was stopped.")
            batch = []
            if finished.empty():
                try:
                    async with asyncio.timeout(deadline - now if not unreported
                                               else max(0.0, min(deadline, next_report) - now)):
                        batch.append(await finished.get())
                except TimeoutError:
                    pass
            while not finished.empty():
                batch.append(finished.get_nowait())
            durations = []
            for future in batch:
                remaining -= 1
                spec, _ = futures[future]
                if future.exception() is not None:
                    raise JobFailed(describe_chunk_error(spec, future.exception()))
                fields = future.result()
                facts[spec.index] = ChunkFact(**fields)
                unreported.append(fields)
                durations.append(fields["ended_at"] - fields["started_at"])
            metrics.chunks_completed(record.kind, durations)
            if unreported and remaining and time.monotonic() >= next_report:
                self.tracker.chunks_done.remote(record.job_id, unreported)  # fire and forget
                unreported = []
                next_report = time.monotonic() + PROGRESS_INTERVAL_SECONDS

    @staticmethod
    def _cancel_refs(futures: dict) -> None:
        for future, (_, ref) in futures.items():
            if not future.done():
                ray.cancel(ref, recursive=False)
            future.add_done_callback(_consume_outcome)  # nobody awaits it any more


def _consume_outcome(future: asyncio.Future) -> None:
    """Mark a chunk's outcome as seen, so asyncio does not log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


def get_runner():
    namespace = get_compute_settings().ray_namespace
    return JobRunner.options(
        name=RUNNER_NAME, namespace=namespace, lifetime="detached", get_if_exists=True
    ).remote()


def new_record(job_id: str, owner: str, kind_name: str, n: int, chunks: int) -> JobRecord:
    """A pending record for a job; raises UnknownKind for a kind that is not registered."""
    kind = get_kind(kind_name)
    return JobRecord(
        job_id=job_id,
        owner=owner,
        kind=kind.name,
        n=n,
        chunks=chunks,
        total_chunks=len(kind.split(n, chunks)),
        created_at=time.time(),
    )
