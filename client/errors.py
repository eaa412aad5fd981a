"""Typed errors: each carries the server's ``detail`` and the HTTP status code."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The service refused or could not answer a request. ``detail`` is the server's own words."""

    def __init__(self, detail: str, status_code: int | None = None, *, body: Any = None):
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.body = body  # the parsed JSON body, when there was one

    def __str__(self) -> str:
        return self.detail if self.status_code is None else f"{self.detail} (HTTP {self.status_code})"


class AuthError(ApiError):
    """401: no token, or one the server does not accept (expired, revoked, ...)."""


class NotFound(ApiError):
    """404: no such job, or not yours."""


class Conflict(ApiError):
    """409: e.g. cancelling a finished job, or an idempotency key reused with another body."""


class TooLarge(ApiError):
    """413: e.g. an upload over the server's MAX_UPLOAD_BYTES (``Client.kinds().limits["uploads"]``)."""


class InvalidInput(ApiError):
    """422: ``errors`` lists ``{"field", "message", "type"}`` per problem, naming the field."""

    def __init__(self, detail: str, status_code: int | None = 422, *, body: Any = None):
        super().__init__(detail, status_code, body=body)
        self.errors: list[dict[str, Any]] = list(body.get("errors") or []) if isinstance(body, dict) else []

    @property
    def fields(self) -> list[str]:
        return [error.get("field", "") for error in self.errors]


class RateLimited(ApiError):
    """429 (rate limit, or too many active jobs) after the client's own retries; ``retry_after`` in seconds."""

    def __init__(self, detail: str, status_code: int | None = 429, *, body: Any = None,
                 retry_after: float | None = None):
        super().__init__(detail, status_code, body=body)
        self.retry_after = retry_after


class ServerUnavailable(ApiError):
    """503: Redis or Ray does not answer right now (after the client's own retries)."""


class NetworkError(ApiError):
    """No HTTP answer at all (connection refused, timed out, ...) after the client's own retries."""


class ChecksumMismatch(ApiError):
    """A downloaded artifact's bytes do not match its listing (``expected``/``actual`` sha256, ``size``
    bytes received). A download to a path leaves no file behind."""

    def __init__(self, detail: str, *, name: str, expected: str, actual: str, size: int):
        super().__init__(detail)
        self.name, self.expected, self.actual, self.size = name, expected, actual, size


_BY_STATUS: dict[int, type[ApiError]] = {401: AuthError, 404: NotFound, 409: Conflict, 413: TooLarge,
                                         422: InvalidInput, 429: RateLimited, 503: ServerUnavailable}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (a number of seconds; an HTTP date is not sent by this
    service and counts as absent), or None."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error for a response that is not a success."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        detail = (response.text.strip()[:200] or response.reason_phrase or "Request failed.")
    error_class = _BY_STATUS.get(response.status_code, ApiError)
    if error_class is RateLimited:
        return RateLimited(detail, response.status_code, body=body, retry_after=retry_after_seconds(response))
    return error_class(detail, response.status_code, body=body)
