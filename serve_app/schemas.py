"""Request and response models of the HTTP API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, EmailStr, Field, StrictBool, Tag, create_model,
                      field_validator)

from compute.artifacts import UploadInfo
from compute.kinds import JobKind, JsonInt, registry
from compute.records import Attempt, ChunkFact, JobRecord, JobStatus
from compute.submission import JobRequest
_VISIBLE = r"[^\x00-\x1f\x7f-\x9f]"
TOKEN_NAME_PATTERN = rf"^{_VISIBLE}*[^\s\x00-\x1f\x7f-\x9f]{_VISIBLE}*$"


def iso_time(ts: Optional[float]) -> Optional[datetime]:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


Priority = Literal["high", "normal", "low"]
DemoPriority = Literal["high"]
PRIORITY_HELP = ("Scheduling priority: higher takes free chunk slots first; a job waiting long is raised "
                 "(aging), so low work still finishes. Batch submissions default to low.")
DEMO_PRIORITY_HELP = "Demo jobs are interactive: always high."


class JobCreate(BaseModel):
    """A job for signed-in users. The OpenAPI schema shows the configured maxima (MAX_N, MAX_CHUNKS)
    and the registered kinds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"n": 1000, "chunks": 4}]})

    n: JsonInt = Field(ge=1, description="Compute over the integers 1..n.")
    chunks: JsonInt = Field(ge=1, description="How many parallel chunks (Ray tasks) to split the job into; "
                              "clamped to n when larger.")
    kind: str = Field("range_sum", max_length=64, description="Job kind (the schema lists those registered; "
                      "`GET /kinds` describes them).")
    use_cache: StrictBool = Field(True, description="Let a completed job of yours with the same kind, n and chunks "
                            "answer (RESULT_CACHE_SECONDS; deterministic kinds): false always computes afresh.")
    priority: Priority = Field("normal", description=PRIORITY_HELP)

    def to_request(self) -> JobRequest:
        return JobRequest(self.kind, {"n": self.n}, self.chunks, legacy=True, priority=self.priority)


class DemoJobCreate(JobCreate):
    """A demo job (no account). Maxima: DEMO_MAX_N, DEMO_MAX_CHUNKS."""

    priority: DemoPriority = Field("high", description=DEMO_PRIORITY_HELP)


def legacy_kind_names(demo: bool = False) -> list[str]:
    """The kinds the README's ``{n, chunks, kind}`` body can name: those whose params are ``n`` alone
    (for ``demo`` jobs, of those open to them)."""
    names = []
    for name, kind in sorted(registry().items()):
        if demo and not kind.demo:
            continue
        try:
            kind.Params.model_validate({"n": 1})
            names.append(name)
        except ValueError:
            continue
    return names


def job_model_name(kind: JobKind, prefix: str) -> str:
    return prefix + "".join(part.capitalize() for part in kind.name.replace("-", "_").split("_")) + "Job"


def _params_model(prefix: str, kind: JobKind) -> type[BaseModel]:
    """The kind's Params under a schema name of its own per route (``MandelbrotParams``,
    ``DemoMandelbrotParams``): kinds' modules all call theirs ``Params``, and some share one."""
    return create_model(job_model_name(kind, prefix).removesuffix("Job") + "Params", __base__=kind.Params)


def _kind_job_model(kind: JobKind, prefix: str, demo: bool) -> type[BaseModel]:
    """``{"kind": <name>, "params": <the kind's Params>, "chunks", "use_cache"}`` for one kind; a
    model of its own per route (``prefix``), so the schema can show each route's maxima
    (``app.install_openapi_limits``)."""
    params = _params_model(prefix, kind)
    model = create_model(
        job_model_name(kind, prefix),
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"A `{kind.name}` job: {kind.description}",
        kind=(Literal[kind.name], Field(description="The job kind.")),
        params=(params, Field(description=f"The inputs of `{kind.name}`.")),
        chunks=(JsonInt, Field(kind.default_chunks, ge=1, description="How many parallel chunks (Ray tasks); "
                               "at most MAX_CHUNKS (DEMO_MAX_CHUNKS for demo jobs) and the kind's own maximum.")),
        use_cache=(StrictBool, Field(True, description="Let a completed job of yours with the same kind, params and "
                               "chunks answer (RESULT_CACHE_SECONDS; deterministic kinds).")),
        priority=(DemoPriority, Field("high", description=DEMO_PRIORITY_HELP)) if demo else
                 (Priority, Field("normal", description=PRIORITY_HELP)),
    )
    model.to_request = lambda self: JobRequest(self.kind, self.params, self.chunks, priority=self.priority)
    return model


def _body_shape(value: Any) -> str:
    has_params = "params" in value if isinstance(value, dict) else hasattr(value, "params")
    return "kinded" if has_params else "legacy"


def job_body_type(legacy: type[JobCreate], prefix: str = "", demo: bool = False):
    """A job body: the README's ``{n, chunks, kind}`` (``legacy``), or ``{kind, params, chunks}``,
    one model per registered kind, discriminated by ``kind`` (so the schema shows every kind's
    params and limits); for ``demo`` jobs, only the kinds open to them."""
    models = [_kind_job_model(kind, prefix, demo) for _, kind in sorted(registry().items())
              if not demo or (kind.demo and not kind.upload_fields)]
    kinded = models[0] if len(models) == 1 else Annotated[Union[tuple(models)], Field(discriminator="kind")]
    return Annotated[Union[Annotated[legacy, Tag("legacy")], Annotated[kinded, Tag("kinded")]],
                     Discriminator(_body_shape)]


JobBody = job_body_type(JobCreate)
DemoJobBody = job_body_type(DemoJobCreate, prefix="Demo", demo=True)


class ResourcesOut(BaseModel):
    num_cpus: float
    num_gpus: float
    memory: Optional[int] = Field(description="Bytes of memory each chunk task reserves (null: none).")
    custom: dict[str, float] = Field(description="Custom Ray resources each chunk task needs.")


class RetryOut(BaseModel):
    transient: list[str] = Field(description="Exception types retried inside the chunk.")
    max_attempts: int
    backoff_seconds: float
    max_backoff_seconds: float


class KindOut(BaseModel):
    """A job kind the cluster runs."""

    name: str = Field(description="The value of a job's `kind`.")
    description: str
    params_schema: dict = Field(description="JSON schema of the kind's `params`.")
    default_chunks: int
    max_chunks: Optional[int] = Field(description="The kind's own cap on chunks (null: MAX_CHUNKS).")
    needs_upload: bool = Field(description="Its params name an upload (`POST /uploads`): signed-in jobs only.")
    demo: bool = Field(description="Open to demo jobs (`POST /jobs/demo`), with `demo_max`.")
    demo_max: dict[str, float] = Field(description="Params maxima for demo jobs (the range kinds' n: DEMO_MAX_N).")
    upload_fields: list[str]
    resources: ResourcesOut
    retry: RetryOut
    timeout_seconds: float = Field(description="A job's wall-clock budget (JOB_TIMEOUT_SECONDS, or the kind's own).")
    deterministic: bool = Field(description="Same params, same result (repeats may be answered from the cache).")

    @classmethod
    def from_kind(cls, kind: JobKind) -> "KindOut":
        return cls(name=kind.name, description=kind.description, params_schema=kind.Params.model_json_schema(),
                   default_chunks=kind.default_chunks, max_chunks=kind.max_chunks,
                   needs_upload=bool(kind.upload_fields), upload_fields=kind.upload_fields,
                   demo=kind.demo and not kind.upload_fields, demo_max=kind.demo_max,
                   resources=ResourcesOut(**kind.resources_view()), retry=RetryOut(**kind.retry.describe()),
                   timeout_seconds=kind.time_budget(), deterministic=kind.deterministic)


RateLimit = Annotated[str, Field(description="Requests per client IP, in the `limits` syntax: `5/minute`.")]


class DemoLimitsOut(BaseModel):
    max_n: int = Field(description="Largest n (DEMO_MAX_N for demo jobs, MAX_N for signed-in jobs).")
    max_chunks: int = Field(description="Most chunks (DEMO_MAX_CHUNKS, MAX_CHUNKS).")
    rate_limit: RateLimit


class JobLimitsOut(DemoLimitsOut):
    max_active_jobs: int = Field(description="Pending or running jobs per user (MAX_ACTIVE_JOBS_PER_USER).")


class RateLimitOut(BaseModel):
    rate_limit: RateLimit


class UploadLimitsOut(RateLimitOut):
    max_bytes: int = Field(description="Largest upload (MAX_UPLOAD_BYTES).")


class LimitsOut(BaseModel):
    jobs: JobLimitsOut = Field(description="`POST /jobs` (signed in); rate limit RATE_LIMIT_JOBS.")
    demo: DemoLimitsOut = Field(description="`POST /jobs/demo`; rate limit RATE_LIMIT_DEMO.")
    login: RateLimitOut = Field(description="Sign-in and registration, per IP and per email (RATE_LIMIT_LOGIN).")
    uploads: UploadLimitsOut = Field(description="`POST /uploads`; rate limit RATE_LIMIT_UPLOADS.")
    max_result_bytes: int = Field(description="Largest result (and chunk output) as JSON (MAX_RESULT_BYTES).")
    max_artifact_bytes_per_job: int = Field(description="A job's artifacts in all (MAX_ARTIFACT_BYTES_PER_JOB).")


class KindsOut(BaseModel):
    """What a job may be: the registered kinds (by name) and the limits the server enforces."""

    kinds: list[KindOut]
    limits: LimitsOut


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    cached: bool = Field(False, description="True when an earlier identical job answered: the job is "
                         "already completed and `result` is set.")
    result: Any = Field(None, description="The result, when `cached`.")


class JobOut(BaseModel):
    job_id: str
    status: JobStatus
    kind: str
    n: Optional[int] = Field(None, description="The range kinds' n (`params.n`); null for other kinds.")
    params: dict[str, Any]
    chunks: int = Field(description="The chunks asked for (`total_chunks` is how many the job has).")
    progress: float = Field(ge=0, le=1)
    completed_chunks: int
    total_chunks: int
    result: Any = Field(None, description="The result, any JSON value (integers exact beyond 64 bits); files "
                        "are artifacts (`GET /jobs/{id}/artifacts`).")
    detail: Optional[str] = None
    created_at: datetime
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    duration_ms: Optional[int] = None
    is_cached: bool = Field(False, description="A completed copy of an earlier identical job's result.")
    retry_of: Optional[str] = Field(None, description="The failed or cancelled job this one retries.")
    priority: Priority = Field("normal", description="Its scheduling priority.")
    queue_position: Optional[int] = Field(None, description="While pending: its approximate place among the "
                                          "jobs waiting for chunk slots (1 = next); `detail` says what it waits for.")

    @classmethod
    def from_record(cls, record: JobRecord) -> "JobOut":
        return cls(
            job_id=record.job_id,
            status=record.status,
            kind=record.kind,
            n=record.n,
            params=record.params,
            chunks=record.chunks,
            progress=record.progress,
            completed_chunks=record.completed_chunks,
            total_chunks=record.total_chunks,
            result=record.result if record.status is JobStatus.completed else None,
            detail=record.detail,
            created_at=iso_time(record.created_at),
            started_at=iso_time(record.started_at),
            completed_at=iso_time(record.completed_at),
            duration_ms=record.duration_ms,
            is_cached=record.cached,
            retry_of=record.retry_of,
            priority=record.priority,
            queue_position=record.queue_position if record.status is JobStatus.pending else None,
        )


class AttemptOut(BaseModel):
    started_at: datetime
    ended_at: datetime
    error: Optional[str] = Field(None, description="Why the attempt failed (null: it succeeded).")

    @classmethod
    def from_attempt(cls, attempt: Attempt) -> "AttemptOut":
        return cls(started_at=iso_time(attempt.started_at), ended_at=iso_time(attempt.ended_at), error=attempt.error)


class ChunkOut(BaseModel):
    index: int
    start: Optional[int] = Field(None, description="The chunk's range (numbers, rows, bytes, items), when it has one.")
    end: Optional[int] = None
    status: str
    result: Any = None
    node_id: Optional[str] = None
    worker_pid: Optional[int] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    duration_ms: Optional[int] = None
    progress: Optional[float] = Field(None, description="How far a running chunk is (0..1), as it reports it.")
    attempts: list[AttemptOut] = Field(default_factory=list, description="Every try (the kind's retry policy).")

    @classmethod
    def from_fact(cls, fact: ChunkFact, progress: Optional[float] = None) -> "ChunkOut":
        duration = None
        if fact.started_at is not None and fact.ended_at is not None:
            duration = max(0, round((fact.ended_at - fact.started_at) * 1000))
        return cls(
            **fact.model_dump(exclude={"started_at", "ended_at", "attempts"}),
            started_at=iso_time(fact.started_at),
            ended_at=iso_time(fact.ended_at),
            duration_ms=duration,
            progress=progress,
            attempts=[AttemptOut.from_attempt(a) for a in fact.attempts],
        )


class JobChunksOut(BaseModel):
    job_id: str
    status: JobStatus
    total_chunks: int
    chunks: list[ChunkOut]


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: str
    errors: list[FieldError]


class HealthOut(BaseModel):
    status: str
    redis: str
    ray: str
    version: str
    ray_dashboard_url: str


class LivenessOut(BaseModel):
    status: Literal["healthy"]
    service: str
    version: str


class ReadinessOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="`ok`, or why the dependency does not answer.")
    timestamp: float


class ServiceStatsOut(BaseModel):
    timestamp: float
    jobs_total: int
    jobs_by_status: dict[str, int] = Field(description="Pending and running now; completed, failed and cancelled "
                                           "ever (since the counters began).")
    chunks_per_second: float = Field(description="Chunks finished per second over the last minute.")
    queued_chunks: int = Field(description="Chunks of pending and running jobs not finished yet.")
    active_users: int = Field(description="Owners with a pending or running job (demo jobs count as one).")


class NodeOut(BaseModel):
    node_id: str
    alive: bool
    address: str
    cpus: float


class SchedulerOut(BaseModel):
    policy: Literal["fair", "fifo"] = Field(description="SCHEDULER")
    shards: int = Field(description="Runner shards (RUNNER_SHARDS), each with its share of the budget.")
    max_inflight_chunks: Optional[int] = Field(description="Chunk tasks allowed in Ray at once (MAX_INFLIGHT_CHUNKS, "
                                               "or by default sized from the cluster's CPUs and the recent chunk "
                                               "run time); null (no bound) under fifo.")
    inflight_chunks: int = Field(description="Chunk tasks in Ray now, on the regular slots.")
    interactive_inflight: int = Field(description="Chunks of high-priority jobs on the interactive lane now.")
    queued_chunks: dict[str, int] = Field(description="Chunks waiting in the service's queue, by job priority.")


class ClusterOut(BaseModel):
    nodes_alive: int
    nodes: list[NodeOut]
    cpus_total: float
    cpus_used: float
    jobs_active: int
    jobs_total: int
    jobs_completed: int
    jobs_failed: int
    jobs_cancelled: int
    chunks_per_second: float
    scheduler: Optional[SchedulerOut] = Field(None, description="null while the job runner does not answer.")


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=256)

    @field_validator("email", mode="before")
    @classmethod
    def _normalise(cls, value):
        return value.strip().lower() if isinstance(value, str) else value


class LoginCredentials(Credentials):
    """Logging in checks no address format: an address nobody registered is a 401 like a wrong
    password (registration is where addresses are validated)."""

    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    user_id: str
    email: Optional[str]
    created_at: Optional[datetime]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=TOKEN_NAME_PATTERN,
                      description="1-64 characters, no control characters, not only spaces.")

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class ApiTokenOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: Optional[datetime] = None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="The secret; shown only once.")


class StatsOut(BaseModel):
    total_jobs: int
    completed: int
    failed: int
    cancelled: int
    running: int
    avg_duration_ms: Optional[int]


# -- files: uploads and artifacts -----------------------------------------------------------


class UploadOut(BaseModel):
    upload_id: str = Field(description="Name it in a job's params (e.g. `params.upload_id` of word_count).")
    size: int = Field(description="Bytes of the file.")
    sha256: str = Field(description="Hex SHA-256 of the file.")
    filename: str = Field(description="The part's filename, as a base name without control characters.")
    content_type: str = Field(description="The part's media type (application/octet-stream if it sent none).")
    created_at: datetime

    @classmethod
    def from_info(cls, info: UploadInfo) -> "UploadOut":
        return cls(upload_id=info.upload_id, size=info.size, sha256=info.sha256, filename=info.filename,
                   content_type=info.content_type, created_at=iso_time(info.created_at))


class ArtifactOut(BaseModel):
    name: str = Field(description="`/`-separated segments of letters, digits, `.`, `_`, `-`.")
    size: int = Field(description="Bytes.")
    content_type: str
    sha256: str = Field(description="Hex SHA-256 of the bytes (also the download's ETag).")
    url: str = Field(description="Its download path.")


class ArtifactsOut(BaseModel):
    job_id: str
    artifacts: list[ArtifactOut] = Field(description="Sorted by name.")
