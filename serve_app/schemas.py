"""Request and response models of the HTTP API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, field_validator

from compute.kinds import JobKind
from compute.records import ChunkFact, JobRecord, JobStatus


def _no_strings_or_booleans(value):
    if isinstance(value, (str, bool)):
        raise ValueError("must be a JSON integer, not a string or boolean")
    return value


# An integer as JSON Schema means it: 1000 and 1000.0 pass; "1000", true and 1000.5 do not.
JsonInt = Annotated[int, BeforeValidator(_no_strings_or_booleans)]
_VISIBLE = r"[^\x00-\x1f\x7f-\x9f]"
TOKEN_NAME_PATTERN = rf"^{_VISIBLE}*[^\s\x00-\x1f\x7f-\x9f]{_VISIBLE}*$"


def iso_time(ts: Optional[float]) -> Optional[datetime]:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class JobCreate(BaseModel):
    """A job for signed-in users. The OpenAPI schema shows the configured maxima (MAX_N, MAX_CHUNKS)
    and the registered kinds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"n": 1000, "chunks": 4}]})

    n: JsonInt = Field(ge=1, description="Compute over the integers 1..n.")
    chunks: JsonInt = Field(ge=1, description="How many parallel chunks (Ray tasks) to split the job into; "
                              "clamped to n when larger.")
    kind: str = Field("range_sum", max_length=64, description="Job kind (the schema lists those registered; "
                      "`GET /kinds` describes them).")
    use_cache: bool = Field(True, description="Let a completed job of yours with the same kind, n and chunks "
                            "answer (RESULT_CACHE_SECONDS; deterministic kinds): false always computes afresh.")


class DemoJobCreate(JobCreate):
    """A demo job (no account). Maxima: DEMO_MAX_N, DEMO_MAX_CHUNKS."""


class KindOut(BaseModel):
    """A job kind the cluster runs."""

    name: str = Field(description="The value of a job's `kind`.")
    description: str
    timeout_seconds: float = Field(description="A job's wall-clock budget (JOB_TIMEOUT_SECONDS, or the kind's own).")

    @classmethod
    def from_kind(cls, kind: JobKind) -> "KindOut":
        return cls(name=kind.name, description=kind.description, timeout_seconds=kind.time_budget())


RateLimit = Annotated[str, Field(description="Requests per client IP, in the `limits` syntax: `5/minute`.")]


class DemoLimitsOut(BaseModel):
    max_n: int = Field(description="Largest n (DEMO_MAX_N for demo jobs, MAX_N for signed-in jobs).")
    max_chunks: int = Field(description="Most chunks (DEMO_MAX_CHUNKS, MAX_CHUNKS).")
    rate_limit: RateLimit


class JobLimitsOut(DemoLimitsOut):
    max_active_jobs: int = Field(description="Pending or running jobs per user (MAX_ACTIVE_JOBS_PER_USER).")


class RateLimitOut(BaseModel):
    rate_limit: RateLimit


class LimitsOut(BaseModel):
    jobs: JobLimitsOut = Field(description="`POST /jobs` (signed in); rate limit RATE_LIMIT_JOBS.")
    demo: DemoLimitsOut = Field(description="`POST /jobs/demo`; rate limit RATE_LIMIT_DEMO.")
    login: RateLimitOut = Field(description="Sign-in and registration, per IP and per email (RATE_LIMIT_LOGIN).")


class KindsOut(BaseModel):
    """What a job may be: the registered kinds (by name) and the limits the server enforces."""

    kinds: list[KindOut]
    limits: LimitsOut


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    cached: bool = Field(False, description="True when an earlier identical job answered: the job is "
                         "already completed and `result` is set.")
    result: Optional[int] = Field(None, description="The result, when `cached`.")


class JobOut(BaseModel):
    job_id: str
    status: JobStatus
    kind: str
    n: int
    progress: float = Field(ge=0, le=1)
    completed_chunks: int
    total_chunks: int
    result: Optional[int] = Field(None, description="Exact result; may exceed 64 bits.")
    detail: Optional[str] = None
    created_at: datetime
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    duration_ms: Optional[int] = None
    is_cached: bool = Field(False, description="A completed copy of an earlier identical job's result.")

    @classmethod
    def from_record(cls, record: JobRecord) -> "JobOut":
        return cls(
            job_id=record.job_id,
            status=record.status,
            kind=record.kind,
            n=record.n,
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
        )


class ChunkOut(BaseModel):
    index: int
    start: int
    end: int
    status: str
    result: Optional[int] = None
    node_id: Optional[str] = None
    worker_pid: Optional[int] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    duration_ms: Optional[int] = None

    @classmethod
    def from_fact(cls, fact: ChunkFact) -> "ChunkOut":
        duration = None
        if fact.started_at is not None and fact.ended_at is not None:
            duration = max(0, round((fact.ended_at - fact.started_at) * 1000))
        return cls(
            **fact.model_dump(exclude={"started_at", "ended_at"}),
            started_at=iso_time(fact.started_at),
            ended_at=iso_time(fact.ended_at),
            duration_ms=duration,
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
