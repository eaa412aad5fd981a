"""Settings the compute side reads from the environment (shared by the API, actors and workers)."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ComputeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # Every Redis key and channel of the service starts with this (compute/storage/keys.py), so
    # services sharing a Redis stay apart; "" reads the unprefixed keys of earlier versions.
    redis_key_prefix: str = Field("rayjobs:", alias="REDIS_KEY_PREFIX")
    job_ttl_seconds: int = Field(24 * 3600, alias="JOB_TTL_SECONDS", ge=60)
    # Per-job wall-clock budget; 0 means each kind's own default.
    job_timeout_seconds: float = Field(0, alias="JOB_TIMEOUT_SECONDS", ge=0)
    chunk_max_retries: int = Field(3, alias="CHUNK_MAX_RETRIES", ge=0)
    ray_namespace: str = Field("ray-jobs", alias="RAY_NAMESPACE")
    # Extra job-kind plug-in modules (comma-separated import paths) loaded besides compute.kinds.*
    extra_job_kind_modules: str = Field("", alias="EXTRA_JOB_KIND_MODULES")


@lru_cache
def get_compute_settings() -> ComputeSettings:
    return ComputeSettings()
