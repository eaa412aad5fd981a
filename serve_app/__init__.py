"""The HTTP edge: a FastAPI app (routes, models, auth, limits, idempotency) served by Ray Serve."""

__version__ = "0.1.0"
