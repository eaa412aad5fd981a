"""The whole Ray instance dies mid-job; started again, the stack resumes every unfinished job from
its Redis record, reusing the chunks that had finished. With two chunk slots (MAX_INFLIGHT_CHUNKS=2),
chunks are still waiting in the scheduler's queue when it dies: that queue is Redis, so they run too."""

import time

import httpx

from cluster.redis_process import RedisProcess
from tests.support.jobs import wait_for_job
from tests.support.local_stack import LocalStackProcess
from tests.support.stack import KEY_PREFIX, STACK_KEYS


def test_jobs_resume_after_the_head_is_lost(tmp_path):
    redis = RedisProcess(tmp_path / "redis").start()  # outlives the Ray head, as a managed Redis would
    secret = {"REDIS_URL": redis.url, "REDIS_KEY_PREFIX": KEY_PREFIX, "JWT_SECRET": "head-loss-secret-" + "z" * 32,
              "MAX_INFLIGHT_CHUNKS": "2"}
    stack = LocalStackProcess(tmp_path / "first", **secret).start()
    try:
        with httpx.Client(base_url=stack.url, timeout=30) as api:
            registered = api.post("/auth/register", json={"email": "head@example.com", "password": "long enough pw"})
            assert registered.status_code == 201, registered.text
            token = api.post("/auth/login", json={"email": "head@example.com", "password": "long enough pw"})
            assert token.status_code == 200, token.text
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            job_id = api.post("/jobs", json={"n": 12_000, "chunks": 8, "kind": "sleepy_sum"},
                              headers=auth).json()["job_id"]
            other_id = api.post("/jobs", json={"n": 4_000, "chunks": 4, "kind": "sleepy_sum"},
                                headers=auth).json()["job_id"]
            deadline = time.time() + 60
            while (answer := api.get(f"/jobs/{job_id}", headers=auth)).status_code != 200 or \
                    answer.json()["completed_chunks"] < 2:
                assert time.time() < deadline, (answer.status_code, answer.text)
                time.sleep(0.1)
            scheduler = api.get("/monitoring/cluster").json()["scheduler"]
            assert scheduler["max_inflight_chunks"] == 2 and sum(scheduler["queued_chunks"].values()) >= 2, scheduler
        stack.kill_everything()
        assert not stack.descendants()

        second = LocalStackProcess(tmp_path / "second", **secret)
        with httpx.Client(base_url=second.url, timeout=30) as api:
            before = {c["index"]: c for c in api_chunks(redis, job_id) if c["status"] == "completed"}
            assert len(before) >= 2
            second.start()
            job = wait_for_job(api, f"/jobs/{job_id}", headers=auth, timeout=120)
            assert job["status"] == "completed"
            assert job["result"] == 12_000 * 12_001 // 2
            other = wait_for_job(api, f"/jobs/{other_id}", headers=auth, timeout=120)
            assert (other["status"], other["result"]) == ("completed", 4_000 * 4_001 // 2)
            after = {c["index"]: c for c in api.get(f"/jobs/{job_id}/chunks", headers=auth).json()["chunks"]}
            for index, chunk in before.items():  # finished chunks were not recomputed
                assert after[index]["worker_pid"] == chunk["worker_pid"]
                assert after[index]["node_id"] == chunk["node_id"]
            assert second.stop() == 0
    finally:
        if stack.process.poll() is None:
            stack.kill_everything()
        redis.stop()


def api_chunks(redis: RedisProcess, job_id: str) -> list[dict]:
    """Chunk facts straight from Redis while no API is running."""
    import json

    import redis as redis_client

    raw = redis_client.Redis.from_url(redis.url, decode_responses=True).hgetall(STACK_KEYS.chunks(job_id))
    return [json.loads(value) for value in raw.values()]
