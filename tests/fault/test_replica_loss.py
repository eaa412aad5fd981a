"""HTTP replicas killed (SIGKILL) behind the ingress `make run` uses: HAProxy in front of two replicas.

What the README promises, tested here:
- one of the two dies: no client sees an error. Requests sent after the kill go to the other replica
  (HAProxy marks the dead one down and re-sends failed connections elsewhere); reads, and job
  submissions with an Idempotency-Key, that were in flight on it are replayed on the other
  (cluster/haproxy_retries.py); Serve starts a replacement. (Other writes in flight on the dead
  replica fail: nothing can tell whether they ran, so they are not replayed.)
- both die at once: answers are 5xx or refused connections for a few seconds (nothing can answer),
  none hangs, the service comes back by itself, and jobs in flight complete (they run in the runner
  actor, not in a replica).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from tests.support.clients import client_from
from tests.support.jobs import wait_for_job

REPLICA_TITLE = "ray::ServeReplica:ray-jobs:ApiGateway"
BACKEND = "http-ray-jobs"


def replica_pids() -> set[int]:
    """This session's HTTP replicas: workers of our own raylet (other Rays on the machine untouched)."""
    import ray

    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    pids = set()
    for proc in psutil.Process(raylet).children(recursive=True):
        try:
            if (proc.cmdline() or [""])[0].startswith(REPLICA_TITLE):
                pids.add(proc.pid)
        except psutil.Error:
            continue
    return pids


def haproxy_servers() -> dict[str, dict]:
    """HAProxy's view of the replicas (status, current sessions), from its stats page."""
    port = os.environ["RAY_SERVE_HAPROXY_STATS_PORT"]
    text = httpx.get(f"http://127.0.0.1:{port}/stats;csv", timeout=5).text.lstrip("# ")
    return {row["svname"]: row for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == BACKEND and row["svname"].startswith("SERVE_REPLICA")}


@pytest.fixture
def two_replicas(base_url):
    """Both replicas up and known to HAProxy, before and after the test (it kills them)."""
    if "RAY_SERVE_HAPROXY_STATS_PORT" not in os.environ:
        pytest.fail("the session stack is not behind HAProxy, unlike `make run`")
    wait_for_replicas(2)
    yield replica_pids()
    wait_for_replicas(2)


def wait_for_replicas(count: int, replaced: set[int] = frozenset(), timeout: float = 120) -> set[int]:
    """Until `count` replica processes run (none of them in `replaced`) and HAProxy has them all UP."""
    deadline = time.monotonic() + timeout
    while True:
        pids, servers = replica_pids(), {}
        try:
            servers = haproxy_servers()
        except httpx.HTTPError:
            pass
        up = [name for name, row in servers.items() if row["status"] == "UP"]
        if len(pids) == count and not pids & replaced and len(up) == count == len(servers):
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas {pids} (killed {set(replaced)}), HAProxy: "
                                 f"{ {name: row['status'] for name, row in servers.items()} }")
        time.sleep(0.2)


def outcome(call) -> tuple[object, float]:
    started = time.monotonic()
    try:
        status = call().status_code
    except httpx.TransportError as exc:
        status = type(exc).__name__
    return status, time.monotonic() - started


def in_flight_on_a_dying_replica(frozen: set[int], calls: list) -> list[tuple[object, float]]:
    """Run `calls` while both replicas are stopped, until each holds at least two of them; then kill
    one (its requests unanswered) and wake the other. The calls' outcomes, in order."""
    victim, survivor = sorted(frozen)
    for pid in frozen:  # stopped, not dead: requests sent to them now wait there
        os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = [pool.submit(outcome, call) for call in calls]
            deadline = time.monotonic() + 10
            while min(int(row["scur"]) for row in haproxy_servers().values()) < 2:
                assert time.monotonic() < deadline, f"requests not sent to both replicas: {haproxy_servers()}"
                time.sleep(0.05)
            os.kill(victim, signal.SIGKILL)
            os.kill(survivor, signal.SIGCONT)
            return [future.result() for future in futures]
    finally:
        for pid in frozen:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGCONT)
        wait_for_replicas(2, replaced={victim})


def test_reads_in_flight_on_a_killed_replica_are_answered_by_the_other(base_url, two_replicas):
    read = lambda: httpx.get(f"{base_url}/monitoring/health", timeout=30)  # noqa: E731
    answers = in_flight_on_a_dying_replica(two_replicas, [read] * 6)
    print(f"reads in flight: {answers}")
    assert [status for status, _ in answers] == [200] * 6, answers


def test_keyed_submissions_in_flight_on_a_killed_replica_start_one_job_each(base_url, two_replicas):
    """A submission with an Idempotency-Key is replayed on the other replica; the app's idempotency
    makes that safe: one job per key, and the client gets its id."""
    clients = [client_from(base_url) for _ in range(6)]
    keys = [f"replica-loss-{uuid.uuid4()}" for _ in clients]
    body = {"n": 100, "chunks": 2}
    responses: list[httpx.Response | None] = [None] * len(clients)

    def submit(i):
        responses[i] = clients[i].post("/jobs/demo", json=body, headers={"Idempotency-Key": keys[i]})
        return responses[i]

    try:
        answers = in_flight_on_a_dying_replica(two_replicas, [lambda i=i: submit(i) for i in range(6)])
        print(f"submissions in flight: {answers}")
        assert [status for status, _ in answers] == [202] * 6, answers
        for client, key, response in zip(clients, keys, responses):
            again = client.post("/jobs/demo", json=body, headers={"Idempotency-Key": key})
            assert again.headers.get("Idempotent-Replayed") == "true", again.text
            assert again.json()["job_id"] == response.json()["job_id"]  # the key's one and only job
            job = wait_for_job(client, f"/jobs/demo/{response.json()['job_id']}")
            assert job["status"] == "completed" and job["result"] == 100 * 101 // 2
    finally:
        for client in clients:
            client.close()


def test_one_of_two_replicas_killed_no_client_sees_an_error(base_url, two_replicas):
    job_id = httpx.post(f"{base_url}/jobs/demo", json={"n": 6000, "chunks": 2, "kind": "sleepy_sum"},
                        timeout=30).json()["job_id"]
    victim = min(two_replicas)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    answers: list[tuple[str, object, float]] = []
    replaced = threading.Event()

    def keep_asking(name, call):
        while not replaced.is_set():
            status, took = outcome(call)
            answers.append((name, status, took))
            time.sleep(0.02)

    with client_from(base_url) as kept_alive:  # one client keeps its connection, the others open new ones
        clients = {
            "status, kept-alive": lambda: kept_alive.get(f"/jobs/demo/{job_id}"),
            "health, new connection": lambda: httpx.get(f"{base_url}/monitoring/health", timeout=30),
            "page, new connection": lambda: httpx.get(f"{base_url}/", timeout=30),
            "keyed submit, new client": lambda: submit_from_a_new_address(base_url),
        }
        threads = [threading.Thread(target=keep_asking, args=item) for item in clients.items()]
        for thread in threads:
            thread.start()
        try:
            wait_for_replicas(2, replaced={victim})
        finally:
            replaced.set()
            for thread in threads:
                thread.join()
    outage = time.monotonic() - killed_at
    failed = [(name, status) for name, status, _ in answers if status not in (200, 202)]
    slowest = max(took for *_, took in answers)
    print(f"replaced after {outage:.1f} s; {len(answers)} requests, failed {failed}, slowest {slowest:.2f} s")
    assert len(answers) > 20 and not failed
    assert slowest < 10, "a request was held too long"
    job = wait_for_job(httpx.Client(base_url=base_url, timeout=30), f"/jobs/demo/{job_id}", timeout=60)
    assert job["status"] == "completed" and job["result"] == 6000 * 6001 // 2


def submit_from_a_new_address(base_url: str) -> httpx.Response:
    """A demo submission as the README advises (with an Idempotency-Key), from an address of its own
    (the demo route allows 5 a minute per client)."""
    with client_from(base_url) as client:
        return client.post("/jobs/demo", json={"n": 10, "chunks": 1}, headers={"Idempotency-Key": str(uuid.uuid4())})


def test_all_replicas_killed_the_service_comes_back_and_jobs_complete(base_url, two_replicas):
    job_id = httpx.post(f"{base_url}/jobs/demo", json={"n": 6000, "chunks": 2, "kind": "sleepy_sum"},
                        timeout=30).json()["job_id"]
    for pid in two_replicas:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    answers = []
    while time.monotonic() - killed_at < 120:
        status, took = outcome(lambda: httpx.get(f"{base_url}/monitoring/health", timeout=30))
        answers.append((round(time.monotonic() - killed_at, 1), status, round(took, 1)))
        if status == 200 and replica_pids() and not replica_pids() & two_replicas:
            break
        time.sleep(0.2)
    outage = time.monotonic() - killed_at
    print(f"both replicas killed: answered again after {outage:.1f} s; {answers}")
    assert answers[-1][1] == 200, answers[-10:]
    assert {status for _, status, _ in answers} <= {200, 500, 502, 503, "ConnectError", "RemoteProtocolError",
                                                     "ReadError"}, answers
    assert max(took for *_, took in answers) < 20, "a request hung during the outage"
    wait_for_replicas(2, replaced=two_replicas)
    job = wait_for_job(httpx.Client(base_url=base_url, timeout=30), f"/jobs/demo/{job_id}", timeout=60)
    assert job["status"] == "completed" and job["result"] == 6000 * 6001 // 2
