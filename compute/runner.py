"""The job runner: fans a job out into one Ray task per chunk, records progress, combines the result.

Chunks go into Ray through the scheduler (``compute/scheduler.py``): at most MAX_INFLIGHT_CHUNKS at
once, the next one by priority and fair share between owners. A job stays ``pending`` (showing its
queue place) until its first chunk is launched.

It runs as one detached async actor, so jobs keep running when an HTTP replica restarts, and on
(re)start it resumes every job Redis still lists as pending or running, reusing chunks that had
already finished. It writes every state change of a job itself (start, progress batches, the final
state); progress writes are async and at most one per job is in flight, so they never hold up
collection (a separate tracker actor measured no faster and cost a process: bench/README.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayError

from compute import metrics
from compute.collect import JobFailed, collect_chunks
from compute.config import get_compute_settings
from compute.artifacts import ArtifactStore
from compute.kinds import ChunkSpec, UnknownKind, get_kind
from compute.kinds.context import JobContext
from compute.records import ChunkFact, JobRecord, JobStatus
from compute.retrying import until_redis_answers
from compute.scheduler import Dispatcher, default_budget
from compute.storage.jobs import JobStore, RedisError
from compute.storage.leases import JobLeases
from compute.submission import remember_result
from compute.tasks import InteractiveLane, OutputTooLarge, combine_outputs, combine_task, run_chunk, warm_up

RUNNER_NAME = "job-runner"
LEASE_LOST = "lease lost"
SWEEP_SECONDS = 15.0
ARTIFACT_SWEEP_EVERY = 20  # sweeps: the artifact store is tidied every 5 minutes
PROGRESS_INTERVAL_SECONDS = 0.05
CANCEL_GRACE_SECONDS = 5.0  # an interrupted chunk still running this long after a cancel has its worker killed
CAPACITY_SECONDS = 2.0  # how often the in-flight budget follows the cluster's CPUs
QUEUE_VIEW_SECONDS = 1.0  # how often pending jobs' queue places and the queued-chunks gauge are written
log = logging.getLogger(__name__)


@dataclass
class FirstLaunch:
    """Set when a job's first chunk goes into Ray: the job is running and its time budget starts."""

    kind: str
    event: asyncio.Event = field(default_factory=asyncio.Event)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class JobRunner:
    """One shard of the runner: it runs the jobs whose ids hash to it (``shard_of``), each under a
    lease (``storage/leases.py``), with its share of the in-flight budget."""

    def __init__(self, shard: int = 0, shards: int = 1):
        self.settings = get_compute_settings()
        self.shard, self.shards = shard, shards
        self.store = JobStore(self.settings.redis_url, self.settings.job_ttl_seconds,
                              key_prefix=self.settings.redis_key_prefix)
        self.leases = JobLeases(self.settings.redis_url, f"{runner_name(shard)}:{uuid.uuid4().hex[:12]}",
                                self.settings.runner_lease_seconds, key_prefix=self.settings.redis_key_prefix)
        self.leased: set[str] = set()  # jobs whose lease this runner holds
        self.lost: set[str] = set()  # jobs being stopped because their lease was lost
        self.jobs: dict[str, asyncio.Task] = {}
        self.reporting: dict[str, asyncio.Task] = {}  # each job's progress write in flight
        self.first_launch: dict[str, FirstLaunch] = {}
        self.recovered = False
        self.orphans: set[str] = set()  # artifact folders whose job record was gone at the last tidy-up
        self.cpus = ray.cluster_resources().get("CPU", 0.0)
        self.chunk_seconds: dict[str, float] = {}  # each queued job's recent chunk run time (a moving average)
        settings = self.settings
        self.dispatcher = Dispatcher(self.capacity, policy=settings.scheduler,
                                     aging_seconds=settings.scheduler_aging_seconds,
                                     lane_slots=settings.interactive_slots, cpus=lambda: self.cpus / self.shards,
                                     on_start=self._started)
        self.lane = None
        if settings.interactive_slots and settings.scheduler == "fair":
            self.lane = InteractiveLane.options(max_concurrency=settings.interactive_slots).remote()
        # a restarted runner (Ray restarts it after a crash) resumes its jobs without being asked
        asyncio.get_running_loop().create_task(self.recover())

    def capacity(self) -> int:
        """This shard's share of MAX_INFLIGHT_CHUNKS or of the default budget for its queued jobs."""
        total = self.settings.max_inflight_chunks or \
            default_budget(self.cpus, [self.chunk_seconds.get(job_id) for job_id in self.dispatcher.jobs])
        return max(1, math.ceil(total / self.shards))

    def _observe(self, job_id: str, kind: str, seconds: list[float]) -> None:
        """Run times of a batch of a job's finished chunks: to the metrics, and the default budget follows them."""
        metrics.chunks_completed(kind, seconds)
        for value in seconds:
            last = self.chunk_seconds.get(job_id)
            self.chunk_seconds[job_id] = value if last is None else last + 0.2 * (value - last)
        self.dispatcher.pump()

    async def recover(self, min_age: float = 0.0) -> int:
        """Resume every job that Redis lists as active and this runner is not running; from then on,
        look again every SWEEP_SECONDS, so an accepted job whose hand-off was lost still runs (a sweep
        leaves jobs younger than a sweep period alone: their hand-off may still be on its way)."""
        if not self.recovered:
            self.recovered = True
            loop = asyncio.get_running_loop()
            loop.create_task(self._sweep_forever())
            loop.create_task(self._warm_up())
            loop.create_task(self._follow_cluster())
            loop.create_task(self._show_queue_forever())
            loop.create_task(self._renew_forever())
        resumed = 0
        for job_id in await self.store.active_job_ids(created_before=time.time() - min_age):
            if job_id not in self.jobs and shard_of(job_id, self.shards) == self.shard:
                self._start(job_id)
                resumed += 1
        if resumed:
            log.info("recovery pass resumed %d job(s)", resumed)
        return resumed

    async def _sweep_forever(self) -> None:
        sweeps = 0
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            sweeps += 1
            try:
                await self.recover(min_age=SWEEP_SECONDS)
                if self.shard == 0 and sweeps % ARTIFACT_SWEEP_EVERY == 0:  # one shard tidies
                    await self.expire_artifacts()
            except (RedisError, OSError) as exc:
                log.warning("sweep skipped: %s", type(exc).__name__)

    async def expire_artifacts(self) -> int:
        """Artifacts expire with their job: delete the folders of jobs whose record was already gone
        at the previous tidy-up (two looks apart, so a folder written just before its record, as a
        retry's copies are, is never taken), and uploads older than JOB_TTL_SECONDS."""
        artifacts = ArtifactStore.from_settings(self.settings)
        folders = await asyncio.to_thread(artifacts.job_ids)
        gone = set(folders) - await self.store.existing_job_ids(folders)
        doomed, self.orphans = gone & self.orphans, gone - self.orphans
        return await asyncio.to_thread(artifacts.sweep, lambda job_id: job_id not in doomed,
                                       self.settings.job_ttl_seconds)

    async def _follow_cluster(self) -> None:
        """Keep the in-flight budget following the cluster's CPUs as nodes join and leave."""
        while True:
            await asyncio.sleep(CAPACITY_SECONDS)
            try:  # a quick call to the GCS, made here: no executor thread may outlive a SIGTERM
                cpus = ray.cluster_resources().get("CPU", 0.0)
            except RayError as exc:  # pragma: no cover - the GCS away for a moment
                log.warning("cluster resources unknown: %s", type(exc).__name__)
                continue
            self.cpus = cpus
            self.dispatcher.pump()

    async def _show_queue_forever(self) -> None:
        while True:
            await asyncio.sleep(QUEUE_VIEW_SECONDS)
            try:
                await self.show_queue()
            except RedisError as exc:
                log.warning("queue places not written: %s", type(exc).__name__)

    async def show_queue(self) -> int:
        """Write each waiting job's place and what it waits for (its record's ``queue_position`` and
        ``detail``, with their change events) and set the queued-chunks gauge; returns how many
        records changed."""
        queued = self.dispatcher.queued()
        metrics.set_queued_chunks(queued)
        busy = f"{self.dispatcher.inflight:,} of {self.capacity():,} chunk slots busy"
        writes = []
        for job_id, (place, ahead) in self.dispatcher.positions().items():
            detail = (f"Queued: {ahead:,} chunk{'s' if ahead != 1 else ''} of other jobs wait ahead of it "
                      f"({busy})." if ahead else f"Queued: next to start ({busy}).")
            writes.append(self.store.show_queue_place(job_id, place, detail))
        return sum(await asyncio.gather(*writes))

    async def queue_stats(self) -> dict:
        """The scheduler as /monitoring/cluster shows it."""
        fair = self.settings.scheduler == "fair"
        return {"policy": self.settings.scheduler, "max_inflight_chunks": self.capacity() if fair else None,
                "inflight_chunks": self.dispatcher.inflight, "interactive_inflight": self.dispatcher.lane_inflight,
                "queued_chunks": self.dispatcher.queued()}

    def _started(self, job_id: str) -> None:
        """A job's first chunk went into Ray: it is running from now on (and its time budget starts)."""
        start = self.first_launch.get(job_id)
        if start is not None:
            start.event.set()
            asyncio.get_running_loop().create_task(self._mark_running(job_id, start.kind))

    async def _mark_running(self, job_id: str, kind: str) -> None:
        try:
            if await self.store.mark_running(job_id):
                metrics.job_submitted(kind)
        except RedisError as exc:  # its final write still records when it started
            log.warning("job %s not marked running: %s", job_id, type(exc).__name__)

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

    async def cancel(self, job_id: str, detail: str) -> dict | None:
        """Stop a job's tasks and mark it cancelled unless it had already finished; returns the
        job's record as it is then (``JobRecord`` fields), or None when it is gone."""
        task = self.jobs.get(job_id)
        if task is not None:
            task.cancel(detail)
            try:
                await task
            except asyncio.CancelledError:
                pass
        record = await self.store.get_job(job_id)
        if record is not None and not record.status.terminal:
            await self._finish(record, JobStatus.cancelled, detail=detail)
            record = await self.store.get_job(job_id)
        return None if record is None else record.model_dump(mode="json")

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
        self.leased.discard(record.job_id)  # final: no renewal may stop what follows (the result cache)
        if finished:
            metrics.job_finished(record.kind, status.value, time.time() - record.created_at)
        return finished

    async def _run_until_recorded(self, job_id: str) -> None:
        """Run a job under its lease; while Redis is away, wait and resume, so an accepted job always
        ends recorded."""
        async for attempt in until_redis_answers(log, f"job {job_id}"):
            with attempt:
                if not await self._take_lease(job_id):
                    return
                try:
                    await self._run(job_id)
                finally:
                    self.leased.discard(job_id)
                    self.lost.discard(job_id)
                    try:
                        await self.leases.release(job_id)
                    except RedisError:  # it expires by itself
                        pass

    async def _take_lease(self, job_id: str) -> bool:
        """The job's lease, waiting up to two lease periods for one held elsewhere to be given back or
        to expire (a runner that died holds its jobs until then); False when another runner keeps it
        (a later sweep looks again)."""
        period = self.settings.runner_lease_seconds
        deadline = time.monotonic() + 2 * period
        record = await self.store.get_job(job_id)
        if record is None or record.status.terminal:
            return True  # nothing to run: _run tidies up
        while not await self.leases.acquire(job_id):
            if time.monotonic() > deadline:
                log.info("job %s stays with the runner that holds its lease", job_id)
                return False
            await asyncio.sleep(period / 6)
        self.leased.add(job_id)
        return True

    async def _renew_forever(self) -> None:
        """Renew the leases of the jobs running here every third of a lease; stop a job whose lease is
        lost (another runner has it, or its record was finished elsewhere)."""
        while True:
            await asyncio.sleep(self.settings.runner_lease_seconds / 3)
            try:
                lost = await self.leases.renew(list(self.leased))
            except RedisError as exc:
                log.warning("leases not renewed: %s", type(exc).__name__)
                continue
            for job_id in lost & self.leased:
                log.warning("job %s: lease lost, stopping its work here", job_id)
                self.lost.add(job_id)
                self.leased.discard(job_id)
                task = self.jobs.get(job_id)
                if task is not None:
                    task.cancel(LEASE_LOST)

    async def _finish_until_stored(self, record: JobRecord, status: JobStatus, **fields) -> None:
        """The final state write, retried while Redis is away (a computed result must not be lost)."""
        async for attempt in until_redis_answers(log, f"the final state of job {record.job_id}"):
            with attempt:
                await self._finish(record, status, **fields)

    def _report_progress(self, job_id: str, facts: list[ChunkFact]) -> None:
        """Record finished chunks without waiting; skipped while the job's previous report is still
        in flight (the next report or the final write includes these chunks anyway)."""
        if job_id in self.reporting:
            return
        task = asyncio.get_running_loop().create_task(self._write_progress(job_id, facts))
        self.reporting[job_id] = task
        task.add_done_callback(lambda _: self.reporting.pop(job_id, None))

    async def _write_progress(self, job_id: str, facts: list[ChunkFact]) -> None:
        try:
            await self.store.record_chunks_done(job_id, facts)
        except RedisError as exc:  # the final write still records them
            log.warning("could not record %d chunk(s) of job %s: %s", len(facts), job_id, type(exc).__name__)

    async def _run(self, job_id: str) -> None:
        record, stored, inputs = await self.store.load_job(job_id)
        if record is None or record.status.terminal:
            await self.store.forget_active(job_id)
            return
        try:
            kind = get_kind(record.kind)
        except UnknownKind:
            await self._finish(record, JobStatus.failed, detail=f"Unknown job kind {record.kind!r}.")
            return
        if inputs is None:  # stored before inputs were: split again (split is deterministic)
            inputs = kind.split(kind.Params.model_validate(record.params), record.chunks,
                                JobContext(job_id, ArtifactStore.from_settings(self.settings)))
        specs = [ChunkSpec(index, chunk_input) for index, chunk_input in enumerate(inputs)]
        done = {i: f for i, f in stored.items() if f.status == "completed"}
        pending: dict[asyncio.Future, ChunkSpec] = {}
        refs: dict[asyncio.Future, ray.ObjectRef] = {}
        launches = []
        loop = asyncio.get_running_loop()
        for spec in specs:
            if spec.index not in done:
                future = loop.create_future()  # resolved with the chunk's outcome once it has run
                pending[future] = spec
                launches.append(self._launcher(kind, job_id, spec, future, refs))
        # the lane is for small jobs (a demo job's size at most) that need only CPUs
        lane = self.lane is not None and len(specs) <= self.settings.demo_max_chunks \
            and not (kind.num_gpus or kind.memory or kind.resources)
        self.first_launch[job_id] = FirstLaunch(kind.name)
        try:
            self.dispatcher.add(job_id, record.owner, record.priority, launches, lane=lane)
            await self._collect(record, kind, specs, done, pending, refs)
        finally:
            self.dispatcher.drop(job_id)
            self.first_launch.pop(job_id, None)
            self.chunk_seconds.pop(job_id, None)

    def _launcher(self, kind, job_id: str, spec: ChunkSpec, future: asyncio.Future, refs: dict):
        """The scheduler's launch(lane) for one chunk: put it into Ray, on a regular slot or on the
        interactive lane, and hand its outcome to ``future``."""

        def launch(lane: bool) -> None:
            if lane:
                ref = self.lane.run.options(name=f"chunk:{kind.name}").remote(kind.name, job_id, spec.index, spec.input)
            else:
                # One task name per kind: Ray keeps per-name task metrics in every process (and in the
                # metrics agent), so a name per job or chunk grew memory without bound (~100 KB per job).
                ref = run_chunk.options(name=f"chunk:{kind.name}", max_retries=self.settings.chunk_max_retries,
                                        **kind.ray_options()).remote(kind.name, job_id, spec.index, spec.input)
            refs[future] = ref
            outcome = asyncio.wrap_future(ref.future())

            def ended(outcome: asyncio.Future) -> None:
                self.dispatcher.ended(job_id, lane)
                if future.done():
                    _consume_outcome(outcome)
                elif outcome.cancelled():
                    future.cancel()
                elif outcome.exception() is not None:
                    future.set_exception(outcome.exception())
                else:
                    future.set_result(outcome.result())

            outcome.add_done_callback(ended)

        return launch

    async def _collect(self, record: JobRecord, kind, specs: list[ChunkSpec], done: dict, pending: dict,
                       refs: dict) -> None:
        job_id = record.job_id
        facts: dict[int, ChunkFact] = {}
        budget = kind.time_budget(self.settings)
        try:
            if pending:  # the time budget starts when the first chunk goes into Ray, not in the queue
                await self.first_launch[job_id].event.wait()
            deadline = time.monotonic() + budget
            await collect_chunks(
                pending, facts, timeout=budget,
                interval=PROGRESS_INTERVAL_SECONDS,
                on_batch=lambda batch: self._observe(job_id, record.kind, [f.ended_at - f.started_at for f in batch]),
                on_progress=lambda unreported: self._report_progress(job_id, unreported),
            )
        except asyncio.CancelledError as stop:
            self.dispatcher.drop(job_id)
            self._cancel(refs)
            if job_id in self.lost:  # another runner has the job now: its record is not ours to write
                raise
            detail = stop.args[0] if stop.args else "Cancelled."
            await self._finish_until_stored(record, JobStatus.cancelled, detail=detail, facts=facts.values())
            raise
        except JobFailed as failure:
            self.dispatcher.drop(job_id)
            self._cancel(refs)
            await self._finish_until_stored(record, JobStatus.failed, detail=str(failure), facts=facts.values())
            return
        outputs = [(done | facts)[spec.index].result for spec in specs]
        try:  # the combine counts against the job's time budget too
            result = await asyncio.wait_for(self._combine(kind, job_id, outputs), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            await self._finish_until_stored(record, JobStatus.failed, facts=facts.values(),
                                            detail=f"Job exceeded its time budget of {budget:g} s while combining "
                                                   "its chunks' outputs and was stopped.")
            return
        except Exception as exc:  # the kind's combine raised, or its result is too big
            cause = exc.cause if isinstance(exc, RayError) and getattr(exc, "cause", None) else exc
            detail = str(cause) if isinstance(cause, OutputTooLarge) else \
                f"Combining the chunks' outputs failed: {type(cause).__name__}: {cause}"
            await self._finish_until_stored(record, JobStatus.failed, detail=detail, facts=facts.values())
            return
        await self._finish_until_stored(record, JobStatus.completed, result=result,
                                        detail="Computation finished successfully.", facts=facts.values())
        try:
            await remember_result(self.store, record, self.settings.result_cache_seconds)
        except RedisError as exc:  # the job is recorded; it just answers no repeat
            log.warning("result of job %s not cached: %s", job_id, type(exc).__name__)

    async def _combine(self, kind, job_id: str, outputs: list):
        """A sum runs here; any other combine runs as a Ray task with the kind's resources, so a heavy
        one (an image, a merge) never holds up the runner's other jobs."""
        if kind.combine_in_runner:
            return combine_outputs(kind.name, job_id, outputs)
        options = {**kind.ray_options(), "num_gpus": 0, "name": f"combine:{kind.name}"}
        return await combine_task.options(**options).remote(kind.name, job_id, outputs)

    @staticmethod
    def _cancel(refs: dict) -> None:
        """Interrupt the job's running chunks (KeyboardInterrupt in the task); a chunk task still running
        CANCEL_GRACE_SECONDS later has its worker killed, so its CPU is freed whatever the chunk does."""
        running = []
        for future, ref in list(refs.items()):
            if not future.done():
                ray.cancel(ref, recursive=False)
                running.append((future, ref))
            future.add_done_callback(_consume_outcome)  # nobody awaits it any more
        if running:
            asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, _kill_unstopped, running)


def _kill_unstopped(running: list) -> None:
    for future, ref in running:
        if not future.done():
            try:
                ray.cancel(ref, force=True, recursive=False)
            except (ValueError, RayError) as exc:  # an actor task (the lane) cannot be force-cancelled
                log.warning("chunk task not killed: %s", exc)


def _consume_outcome(future: asyncio.Future) -> None:
    """Mark a chunk's outcome as seen, so asyncio does not log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


def shard_of(job_id: str, shards: int) -> int:
    """The runner shard a job belongs to (a stable hash: Python's own is salted per process)."""
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=4).digest(), "big") % shards


def runner_name(shard: int) -> str:
    return RUNNER_NAME if shard == 0 else f"{RUNNER_NAME}-{shard}"


def get_runner(job_id: str | None = None, *, shard: int | None = None):
    """The handle of the runner shard of ``job_id`` (or of ``shard``; shard 0 without either), creating
    the actor if it does not exist (startup and submissions). Shards are spread over the nodes."""
    settings = get_compute_settings()
    shards = settings.runner_shards
    index = shard if shard is not None else (shard_of(job_id, shards) if job_id else 0)
    return JobRunner.options(
        name=runner_name(index), namespace=settings.ray_namespace, lifetime="detached", get_if_exists=True,
        scheduling_strategy="SPREAD",
    ).remote(index, shards)


def get_runners() -> list:
    """Every shard's handle, creating those that do not exist."""
    return [get_runner(shard=i) for i in range(get_compute_settings().runner_shards)]


def find_runners() -> list:
    """Every shard's handle if all exist (raises ValueError otherwise): for reads like health."""
    settings = get_compute_settings()
    return [ray.get_actor(runner_name(i), namespace=settings.ray_namespace) for i in range(settings.runner_shards)]
