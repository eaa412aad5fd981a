"""A 202 means "on disk": the private Redis fsyncs its AOF before it replies (``appendfsync always``).

A SIGKILL of redis-server alone cannot tell ``always`` from ``everysec``: in both modes the write
reaches the page cache before the reply, and the page cache survives the process (measured: 0 of 20
writes lost to SIGKILL-then-restart with ``everysec``). What ``everysec`` loses is the last second
on a crash of the *host*. So the fsyncs themselves are counted (strace on the real redis-server,
against an ``everysec`` control), and the crash-of-the-process test checks the path end to end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis

from cluster.redis_process import RedisProcess, appendfsync_setting
from tests.support.stack import STACK_KEYS

WRITES = 30


def fsyncs_during_writes(server: RedisProcess, tmp_path) -> int:
    """fsync/fdatasync calls of redis-server (all threads) while one client makes WRITES writes."""
    out = tmp_path / f"strace-{server.port}.txt"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(out),
                               "-p", str(server.process.pid)], stderr=subprocess.PIPE)
    client = redis.Redis(port=server.port)
    try:
        deadline = time.time() + 10
        while not out.exists():  # strace creates its output file once it is attached
            assert tracer.poll() is None, tracer.stderr.read().decode()
            assert time.time() < deadline, "strace did not attach"
            time.sleep(0.01)
        client.ping()
        for i in range(WRITES):
            client.hset(STACK_KEYS.job(str(i)), mapping={"status": "pending", "i": i})  # like a job record
    finally:
        tracer.send_signal(signal.SIGINT)  # detach; the replies above came after any fsync they waited for
        tracer.wait(10)
        client.close()
    return sum(1 for line in out.read_text().splitlines() if "sync(" in line)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")
def test_every_acknowledged_write_is_fsynced_and_everysec_is_not(tmp_path):
    durable = RedisProcess(tmp_path / "always").start()  # the default make run and the tests use
    control = RedisProcess(tmp_path / "everysec", appendfsync="everysec").start()
    try:
        assert redis.Redis(port=durable.port).config_get("appendfsync") == {"appendfsync": "always"}
        assert fsyncs_during_writes(durable, tmp_path) >= WRITES
        assert fsyncs_during_writes(control, tmp_path) < WRITES // 3  # the measurement tells them apart
    finally:
        durable.stop()
        control.stop()


def test_appendfsync_setting_is_checked(monkeypatch):
    monkeypatch.delenv("REDIS_APPENDFSYNC", raising=False)
    assert appendfsync_setting() == "always"
    monkeypatch.setenv("REDIS_APPENDFSYNC", " EverySec ")
    assert appendfsync_setting() == "everysec"
    monkeypatch.setenv("REDIS_APPENDFSYNC", "sometimes")
    with pytest.raises(ValueError, match="REDIS_APPENDFSYNC must be one of always, everysec, no"):
        RedisProcess("/nonexistent")


def test_job_acknowledged_with_202_survives_sigkill_of_redis(api, redis_server):
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    assert client.config_get("appendfsync") == {"appendfsync": "always"}  # the stack's own Redis
    response = api.post("/jobs/demo", json={"n": 1000, "chunks": 2})
    os.kill(redis_server.process.pid, signal.SIGKILL)  # no pause between the 202 and the crash
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    redis_server.process.wait(10)
    redis_server.start()

    client = redis.Redis(port=redis_server.port, decode_responses=True)
    assert client.hget(STACK_KEYS.job(job_id), "status"), "the acknowledged job's record was lost"
    persistence = client.info("persistence")
    assert persistence["aof_enabled"] == 1 and persistence["aof_last_write_status"] == "ok"
    deadline = time.time() + 30
    while (status := api.get(f"/jobs/demo/{job_id}").status_code) != 200:  # replicas reconnect on their own
        assert status == 503 and time.time() < deadline, status
        time.sleep(0.2)
