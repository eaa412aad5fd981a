"""The Python client (`client/`) and its command line against the live stack (HAProxy, two replicas,
Ray, Redis), each test from its own loopback address."""

from __future__ import annotations

import itertools
import logging
import os
import pty
import subprocess
import sys
import time
import uuid
from datetime import datetime

import httpx
import pytest

from client import (
    AsyncClient,
    AuthError,
    Client,
    Conflict,
    InvalidInput,
    Job,
    NetworkError,
    NotFound,
    RateLimited,
)
from cluster.ports import free_port
from tests.client.support import REPO, RecordingTransport, cli
from tests.support.clients import run_async

SUM_TO_A_MILLION = 500_000_500_000
LONG_JOB = {"kind": "sleepy_sum", "n": 60_000, "chunks": 2}  # 30 s per chunk: long enough to cancel


def progress_is_monotonic(updates: list[Job]) -> bool:
    counts = [job.completed_chunks for job in updates]
    return counts == sorted(counts)


def test_submit_then_wait_gives_the_exact_result_and_reports_progress(jobs):
    accepted = jobs.submit(n=10**6, chunks=8)
    assert (accepted.status, accepted.kind, accepted.n) == ("pending", "range_sum", 10**6)
    assert uuid.UUID(accepted.job_id).version == 4
    updates: list[Job] = []
    job = jobs.wait(accepted.job_id, timeout=60, progress=updates.append)
    assert job.status == "completed" and job.result == SUM_TO_A_MILLION and type(job.result) is int
    assert (job.completed_chunks, job.total_chunks, job.progress) == (8, 8, 1.0)
    assert isinstance(job.created_at, datetime) and job.completed_at.tzinfo is not None
    assert job.detail and job.duration_ms >= 0
    assert job.priority == "normal" and job.queue_position is None
    assert updates and updates[-1] == job and progress_is_monotonic(updates)
    assert jobs.get(job.job_id) == job


def test_submit_with_a_priority(jobs):
    low = jobs.wait(jobs.submit(n=1000, chunks=2, priority="low").job_id, timeout=60)
    assert (low.status, low.priority, low.result) == ("completed", "low", 500500)
    high = jobs.wait(jobs.submit("mandelbrot", params={"width": 8, "height": 4}, priority="high").job_id, timeout=60)
    assert (high.status, high.priority) == ("completed", "high")
    with pytest.raises(InvalidInput) as invalid:
        jobs.submit(n=10, chunks=1, priority="urgent")
    assert invalid.value.fields == ["priority"]
    with pytest.raises(InvalidInput) as demo:
        jobs.submit(n=10, chunks=1, demo=True, priority="low")  # demo jobs are always high
    assert demo.value.fields == ["priority"]


def test_async_client_submits_waits_streams_and_raises_typed_errors(base_url, client_ip, token):
    async def scenario():
        transport = httpx.AsyncHTTPTransport(local_address=client_ip)
        async with AsyncClient(base_url, token, transport=transport) as jobs:
            updates: list[Job] = []
            job = await jobs.wait((await jobs.submit(n=10**6, chunks=8)).job_id, timeout=60, progress=updates.append)
            streamed = [event async for event in jobs.stream(
                (await jobs.submit("sleepy_sum", n=1000, chunks=4)).job_id)]
            page = await jobs.list(status="completed")
            with pytest.raises(NotFound):
                await jobs.get(str(uuid.uuid4()))
            return job, updates, streamed, page, await jobs.chunks(job.job_id), await jobs.me(), await jobs.kinds()

    job, updates, streamed, page, chunks, me, kinds = run_async(scenario)
    assert job.status == "completed" and job.result == SUM_TO_A_MILLION
    assert updates[-1] == job and progress_is_monotonic(updates)
    assert [e.event for e in streamed][-1] == "done" and streamed[-1].job.result == 500_500
    assert {e.event for e in streamed[:-1]} == {"progress"}
    assert job.job_id in [j.job_id for j in page.items] and page.total >= 1
    assert len(chunks.chunks) == 8 and sum(c.result for c in chunks.chunks) == SUM_TO_A_MILLION
    assert me.user_id and "sleepy_sum" in kinds.names()


def test_demo_jobs_need_no_token(demo):
    accepted = demo.submit(n=1000, chunks=4, demo=True)
    job = demo.wait(accepted.job_id, timeout=60, demo=True)
    assert (job.status, job.result, job.total_chunks) == ("completed", 500_500, 4)
    assert demo.get(job.job_id, demo=True).result == 500_500
    chunks = demo.chunks(job.job_id, demo=True)
    assert [(c.start, c.end) for c in chunks.chunks] == [(1, 250), (251, 500), (501, 750), (751, 1000)]
    assert all(len(c.node_id) == 56 and c.worker_pid > 0 and c.started_at <= c.ended_at for c in chunks.chunks)
    with pytest.raises(AuthError):  # the signed-in routes still want one
        demo.get(job.job_id)


def test_stream_yields_progress_then_done(jobs):
    job_id = jobs.submit("sleepy_sum", n=4000, chunks=8).job_id  # 0.5 s per chunk, 4 CPUs: two rounds
    events = list(jobs.stream(job_id))
    assert [e.event for e in events[:-1]] == ["progress"] * (len(events) - 1) and len(events) >= 2
    assert events[-1].event == "done" and events[-1].job.status == "completed"
    assert events[-1].job.result == 4001 * 2000
    assert progress_is_monotonic([e.job for e in events])
    assert list(jobs.stream(job_id))[0].event == "done"  # a finished job's stream is just `done`


def test_list_get_cancel_and_wait_timeout(jobs):
    long_id = jobs.submit(**LONG_JOB).job_id
    short = jobs.wait(jobs.submit(n=100, chunks=2).job_id, timeout=60)
    page = jobs.list()
    assert [j.job_id for j in page.items][:2] == [short.job_id, long_id] and page.total == 2
    assert (page.limit, page.offset) == (20, 0)
    assert [j.job_id for j in jobs.list(status="completed").items] == [short.job_id]
    assert jobs.list(limit=1, offset=1).items[0].job_id == long_id
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=long_id):
        jobs.wait(long_id, timeout=0.5)
    assert time.monotonic() - started < 8  # the deadline is checked at least at each heartbeat (5 s)
    cancelled = jobs.cancel(long_id)
    assert cancelled.status == "cancelled" and cancelled.result is None
    assert jobs.get(long_id).status == "cancelled" and jobs.wait(long_id, timeout=10).status == "cancelled"
    with pytest.raises(Conflict) as finished:
        jobs.cancel(short.job_id)
    assert finished.value.status_code == 409 and "already completed" in finished.value.detail


def test_errors_are_typed_and_carry_the_servers_detail(jobs, base_url, client_ip):
    with pytest.raises(NotFound) as missing:
        jobs.get(str(uuid.uuid4()))
    assert missing.value.status_code == 404 and missing.value.detail == "Job not found."
    with pytest.raises(InvalidInput) as invalid:
        jobs.submit(n=0, chunks=4)
    assert invalid.value.status_code == 422 and invalid.value.fields == ["n"] and "n" in invalid.value.detail
    with pytest.raises(InvalidInput) as unknown:
        jobs.submit(n=10, chunks=1, params={"colour": "blue"})
    assert unknown.value.fields == ["colour"]
    with pytest.raises(InvalidInput) as kind:
        jobs.submit("bogus", n=10, chunks=1)
    assert kind.value.errors[0]["field"] == "kind"
    transport = httpx.HTTPTransport(local_address=client_ip)
    for token in (None, "not-a-token", "rjt_" + "x" * 40):
        with Client(base_url, token, transport=transport) as stranger, pytest.raises(AuthError) as refused:
            stranger.list()
        assert refused.value.status_code == 401 and refused.value.detail
    with pytest.raises(NotFound):
        list(jobs.stream(str(uuid.uuid4())))


def test_a_429_raises_rate_limited_or_is_retried_after_retry_after_with_the_same_key(base_url, client_ip, caplog):
    with Client(base_url, transport=httpx.HTTPTransport(local_address=client_ip), max_retries=0) as demo:
        key = str(uuid.uuid4())
        first = demo.submit(n=10, chunks=1, demo=True, idempotency_key=key)
        for _ in range(4):  # the demo limit: 5/minute per address
            demo.submit(n=10, chunks=1, demo=True)
        with pytest.raises(RateLimited) as limited:
            demo.submit(n=10, chunks=1, demo=True)
        assert limited.value.status_code == 429 and 1 <= limited.value.retry_after <= 60
        assert "Rate limit exceeded" in limited.value.detail
        # a submit the server had accepted is replayed, limit or not: a retried submit starts no second job
        assert demo.submit(n=10, chunks=1, demo=True, idempotency_key=key).job_id == first.job_id

    transport = RecordingTransport(local_address=client_ip)
    caplog.set_level(logging.INFO, logger="client")
    with Client(base_url, transport=transport, max_retries=2, max_retry_wait=0.3) as patient:
        with pytest.raises(RateLimited):
            patient.submit(n=10, chunks=1, demo=True)
    times, requests = zip(*transport.sent)
    assert len(requests) == 3  # the call and its 2 retries
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))  # min(Retry-After, cap)
    retries = [r.getMessage() for r in caplog.records if r.name == "client"]
    assert retries == ["HTTP 429 on POST /v1/jobs/demo; retry 1/2 in 0.30 s",
                       "HTTP 429 on POST /v1/jobs/demo; retry 2/2 in 0.30 s"]


def test_the_same_idempotency_key_gives_the_same_job(jobs):
    key = f"client-{uuid.uuid4()}"
    first = jobs.submit(n=1000, chunks=2, idempotency_key=key)
    again = jobs.submit(n=1000, chunks=2, idempotency_key=key)
    assert again.job_id == first.job_id
    assert [j.job_id for j in jobs.list().items] == [first.job_id]
    with pytest.raises(Conflict, match="different request body"):
        jobs.submit(n=1001, chunks=2, idempotency_key=key)


def test_transport_errors_on_submit_are_retried_with_the_same_key(client_ip):
    transport = RecordingTransport(local_address=client_ip)
    with Client(f"http://127.0.0.1:{free_port()}", transport=transport, max_retries=2, max_retry_wait=0.05) as down:
        with pytest.raises(NetworkError, match="ConnectError"):
            down.submit(n=10, chunks=1, demo=True)
    keys = [request.headers["Idempotency-Key"] for _, request in transport.sent]
    assert len(keys) == 3 and len(set(keys)) == 1


def test_wait_falls_back_to_polling_when_the_stream_breaks(base_url, client_ip, token, caplog):
    """A read timeout shorter than the gaps between events (one 3 s chunk, heartbeats every 5 s)
    breaks the stream; polling finishes the wait."""
    caplog.set_level(logging.INFO, logger="client")
    timeout = httpx.Timeout(10, read=1)
    with Client(base_url, token, timeout=timeout, transport=httpx.HTTPTransport(local_address=client_ip),
                poll_interval=0.2) as jobs:
        updates: list[Job] = []
        job = jobs.wait(jobs.submit("sleepy_sum", n=3000, chunks=1).job_id, timeout=60, progress=updates.append)
    assert job.status == "completed" and job.result == 3001 * 1500
    assert updates[-1] == job
    assert any("broke (The event stream broke: ReadTimeout); polling instead" in r.getMessage() for r in caplog.records)


def test_me_and_kinds(jobs, user):
    me = jobs.me()
    assert me.email == user["email"] and me.user_id and isinstance(me.created_at, datetime)
    kinds = jobs.kinds()
    assert {"range_sum", "prime_count", "sleepy_sum"} <= set(kinds.names())
    assert kinds.limits["demo"]["max_n"] == 10_000 and kinds.kinds[0].timeout_seconds > 0


# -- the command line ----------------------------------------------------------------------------

def test_cli_submits_a_demo_job_and_follows_it(base_url, client_ip):
    done = cli("submit", "--demo", "--n", "1000", "--chunks", "4", "--follow", "--interface", client_ip,
               env={"RAYJOBS_URL": base_url})
    assert done.returncode == 0, done.stderr
    job_id, result = done.stdout.splitlines()
    assert uuid.UUID(job_id) and result == "result: 500500"
    assert "completed 4/4 chunks (100%)" in done.stderr  # not a terminal: one line per update
    shown = cli("get", job_id, "--demo", "--url", base_url, "--interface", client_ip)
    assert shown.returncode == 0 and '"result": 500500' in shown.stdout


def test_cli_draws_a_progress_bar_on_a_terminal(base_url, client_ip, token):
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "client", "submit", "--n", "4000", "--chunks", "4", "--kind",
                               "sleepy_sum", "--follow", "--url", base_url, "--interface", client_ip],
                              cwd=REPO, env={**os.environ, "RAYJOBS_TOKEN": token}, stdout=subprocess.PIPE,
                              stderr=terminal, text=True, timeout=120)
        os.close(terminal)
        terminal = None
        drawn = b""
        while chunk := _read(controller):
            drawn += chunk
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "result: 8002000"
    lines = drawn.decode().replace("\r\n", "\n").split("\r")  # the terminal writes "\n" as "\r\n"
    assert lines[-1].startswith("[" + "#" * 30 + "] 100.0%  4/4 chunks  completed")
    assert any(line.startswith("[---") for line in lines)  # drawn from the start, redrawn in place


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the terminal's other end is closed
        return b""


def test_cli_exit_codes(base_url, client_ip, token):
    env = {"RAYJOBS_URL": base_url, "RAYJOBS_TOKEN": token}
    assert cli("submit", "--n", "many", "--chunks", "4", env=env).returncode == 2
    assert cli("frobnicate", env=env).returncode == 2
    missing = cli("wait", str(uuid.uuid4()), "--interface", client_ip, env=env)
    assert (missing.returncode, missing.stderr) == (1, "error: Job not found.\n")
    submitted = cli("submit", "--kind", "sleepy_sum", "--n", "60000", "--chunks", "2", "--interface", client_ip,
                    env=env)
    assert submitted.returncode == 0
    job_id = submitted.stdout.strip()
    listed = cli("list", "--interface", client_ip, env=env)
    assert listed.returncode == 0 and listed.stdout.startswith(job_id) and "(1 of 1, offset 0)" in listed.stderr
    assert cli("cancel", job_id, "--interface", client_ip, env=env).stdout == f"{job_id} cancelled\n"
    followed = cli("wait", job_id, "--interface", client_ip, env=env)
    assert followed.returncode == 1 and followed.stderr.endswith("error: job cancelled: Cancelled by the user.\n")
    refused = cli("list", "--interface", client_ip, env={**env, "RAYJOBS_TOKEN": ""})
    assert refused.returncode == 1 and refused.stderr.startswith("error: ")
