"""Documented error responses for the OpenAPI schema."""

from serve_app.schemas import ErrorOut, ValidationErrorOut

_DESCRIPTIONS = {
    401: "Missing or invalid bearer token.",
    404: "Not found (or not yours).",
    409: "Conflict: idempotency key reused with another body, or the job already finished.",
    413: "Request body too large.",
    422: "Invalid input; names the field and the allowed range.",
    429: "Rate limited or too many active jobs; see Retry-After.",
    503: "Redis or Ray unavailable; retry shortly.",
}


def ERRORS(*codes: int) -> dict:
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


ValidationErrors = {422: {"model": ValidationErrorOut, "description": _DESCRIPTIONS[422]}}


# A live stream: its events are documented in each route's description.
SSE = {200: {"description": "A Server-Sent Events stream.", "content": {"text/event-stream": {}}}}
