"""A typed Python client of the Ray Jobs HTTP API: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

    from client import Client

    with Client("http://127.0.0.1:8000", token="rjt_...") as jobs:
        job = jobs.submit(n=1_000_000, chunks=8)
        print(jobs.wait(job.job_id).result)   # 500000500000
        job = jobs.submit("mandelbrot", params={"width": 640, "height": 480})
        jobs.wait(job.job_id)
        jobs.download(job.job_id, "mandelbrot.png", "mandelbrot.png")

``python -m client --help`` is a command line on top of it.
"""

__version__ = "0.2.0"

from client.aio import AsyncClient
from client.errors import (
    ApiError,
    AuthError,
    ChecksumMismatch,
    Conflict,
    InvalidInput,
    NetworkError,
    NotFound,
    RateLimited,
    ServerUnavailable,
    TooLarge,
)
from client.models import Artifact, Attempt, Chunk, Job, JobChunks, JobEvent, JobPage, Kind, Kinds, Upload, User
from client.sync import Client

__all__ = [
    "ApiError",
    "Artifact",
    "AsyncClient",
    "Attempt",
    "AuthError",
    "ChecksumMismatch",
    "Chunk",
    "Client",
    "Conflict",
    "InvalidInput",
    "Job",
    "JobChunks",
    "JobEvent",
    "JobPage",
    "Kind",
    "Kinds",
    "NetworkError",
    "NotFound",
    "RateLimited",
    "ServerUnavailable",
    "TooLarge",
    "Upload",
    "User",
]
