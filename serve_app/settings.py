"""The HTTP edge's section of the service's settings (the shared section: ``compute/config.py``)."""

from __future__ import annotations

from functools import cached_property, lru_cache
from ipaddress import ip_network
from typing import Literal

from pydantic import Field, field_validator, model_validator

from compute.config import ComputeSettings


class Settings(ComputeSettings):
    """Everything the API replicas read: the shared section plus the HTTP edge's own variables."""

    project_name: str = Field("Ray Jobs", alias="PROJECT_NAME")
    environment: Literal["development", "production", "test"] = Field("development", alias="ENVIRONMENT")
    cors_origins: str = Field("http://localhost:3000,http://localhost:8000", alias="BACKEND_CORS_ORIGINS")
    # Peers whose X-Forwarded-For / Forwarded headers are believed (comma-separated IPs or CIDRs):
    # proxies the operator runs in front of the service, and the service's own ingress (HAProxy's
    # address, which `cluster up` sets; cluster/ingress.py).
    trusted_proxies: str = Field("", alias="TRUSTED_PROXIES")
    ingress_proxies: str = Field("", alias="INGRESS_PROXIES")
    max_body_bytes: int = Field(64 * 1024, alias="MAX_BODY_BYTES", ge=1024)
    # POST /uploads alone takes bodies this big (streamed to the artifact store, never held in memory).
    max_upload_bytes: int = Field(64 << 20, alias="MAX_UPLOAD_BYTES", ge=1024)
    max_header_bytes: int = Field(16 * 1024, alias="MAX_HEADER_BYTES", ge=4096)
    # A WebSocket that has had nothing to send for this long sends a heartbeat (routes/ws.py).
    ws_heartbeat_seconds: float = Field(30.0, alias="WS_HEARTBEAT_SECONDS", gt=0, le=3600)

    rate_limit_enabled: bool = Field(True, alias="RATE_LIMIT_ENABLED")
    rate_limit_jobs: str = Field("10/minute", alias="RATE_LIMIT_JOBS")
    rate_limit_demo: str = Field("5/minute", alias="RATE_LIMIT_DEMO")
    rate_limit_login: str = Field("5/minute", alias="RATE_LIMIT_LOGIN")
    rate_limit_uploads: str = Field("30/minute", alias="RATE_LIMIT_UPLOADS")

    jwt_secret: str = Field("", alias="JWT_SECRET", repr=False)
    jwt_issuer: str = Field("ray-jobs", alias="JWT_ISSUER")
    jwt_audience: str = Field("ray-jobs-api", alias="JWT_AUDIENCE")
    jwt_expire_minutes: int = Field(60, alias="JWT_EXPIRE_MINUTES", ge=1)
    jwt_jwks_url: str = Field("", alias="JWT_JWKS_URL")

    ray_dashboard_url: str = Field("http://127.0.0.1:8265", alias="RAY_DASHBOARD_URL")

    @field_validator("trusted_proxies", "ingress_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ip_network(item, strict=False)
        return value

    @model_validator(mode="after")
    def _secret_required_in_production(self) -> "Settings":
        if self.environment == "production" and len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET (at least 32 characters) is required when ENVIRONMENT=production")
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @cached_property
    def trusted_proxy_networks(self):
        listed = f"{self.trusted_proxies},{self.ingress_proxies}".split(",")
        return [ip_network(p.strip(), strict=False) for p in listed if p.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
