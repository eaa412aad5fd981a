"""The scheduler on a real multi-node Ray cluster (tests/cluster/scheduling_driver.py): fair share
between users, priorities, the in-flight budget seen from Ray's state API, leases (two runners racing
for a job, a shard's runner SIGKILLed) and queued chunks surviving the loss of every runner.

Chunks note each run in Redis (the ``counted_sum`` test kind), so a chunk run twice shows."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.cluster_driver import REPO, run_driver

HAND_OFF_SECONDS = 0.5  # POST to the runner's queue, at most, on a loaded 2-core machine


@pytest.fixture(scope="module")
def run():
    yield from run_driver(REPO / "tests" / "cluster" / "scheduling_driver.py", timeout=600)


def exact(job: dict) -> None:
    assert job["status"] == "completed", job["detail"]
    assert job["result"] == job["expected"]


def starts(job: dict) -> list[float]:
    return sorted(chunk["started_at"] for chunk in job["chunks"])


def test_a_small_job_shares_the_slots_with_another_users_big_jobs(run):
    a1, a2, b = run["fair"]
    for job in (a1, a2, b):
        exact(job)
        assert sorted(job["runs"]) == list(range(len(job["chunks"])))  # every chunk ran once
    # B came when A's 48 chunks were queued; first come, first served would run all of them first
    assert b["completed_at"] < min(a1["completed_at"], a2["completed_at"])
    window = (starts(b)[0], starts(b)[-1])
    a_in_window = [t for t in starts(a1) + starts(a2) if window[0] <= t <= window[1]]
    assert len(a_in_window) <= len(b["chunks"]) + 2, "B's chunks did not alternate with A's"
    # ...and A's two jobs shared A's slots between them
    assert abs(starts(a1)[len(starts(a1)) // 2] - starts(a2)[len(starts(a2)) // 2]) < 2.0


def test_high_priority_jobs_go_first_and_the_low_one_still_finishes(run):
    low, highs = run["priority"]["low"], run["priority"]["high"]
    exact(low)
    low_starts = starts(low)
    aging = run["aging_seconds"]
    for high in highs:
        exact(high)
        first = starts(high)[0]
        # from when the runner had the job (its hand-off takes a moment after the record is written),
        # a low chunk starts first only when the low job had waited two aging periods (then it counts
        # as high: low never starves)
        known = high["created_at"] + HAND_OFF_SECONDS
        overtaken = [t for t in low_starts if known < t < first and t - max(
            [u for u in low_starts if u < t] or [low["created_at"]]) < 2 * aging - 0.2]
        assert len(overtaken) <= 1, f"low chunks started while a high job waited: {overtaken}"
    assert low["priority"] == "low" and {h["priority"] for h in highs} == {"high"}


def test_max_inflight_chunks_is_never_exceeded(run):
    samples = run["inflight"]["samples"]
    assert len(samples) >= 10
    assert max(samples) <= run["max_inflight"], samples  # Ray's state API: chunk tasks not finished
    assert max(samples) == run["max_inflight"], "the budget was never filled: the test saw nothing"
    assert max(sum(shards) for shards in run["inflight"]["runner_inflight"]) <= run["max_inflight"]
    for job in run["inflight"]["jobs"]:
        exact(job)


def test_two_runners_racing_for_a_job_run_it_once(run):
    job = run["race"]
    exact(job)
    assert sorted(job["runs"]) == list(range(len(job["chunks"]))), "a chunk ran twice: two runners ran the job"


def test_a_job_survives_its_shards_runner_being_killed(run):
    killed = run["shard_kill"]
    before, after = killed["before"], killed["after"]
    exact(after)
    done_before = {chunk["index"]: chunk for chunk in before["chunks"]}
    assert done_before, "nothing had finished when the runner was killed"
    for chunk in after["chunks"]:
        if chunk["index"] in done_before:  # finished chunks are not run again
            assert chunk == done_before[chunk["index"]]
    runs = Counter(after["runs"])
    assert set(runs) == set(range(len(after["chunks"])))
    twice = [index for index, count in runs.items() if count > 1]
    assert all(runs[i] == 2 for i in twice) and not set(twice) & set(done_before)
    assert len(twice) <= 2, "more chunks ran twice than the shard had in flight when it died"
    assert any(chunk["started_at"] > killed["killed_at"] for chunk in after["chunks"])


def test_queued_chunks_survive_losing_every_runner_and_a_change_of_shards(run):
    # the jobs were on shards 0 and 1 of 2; fresh runners, 3 of them, each take the job that now hashes
    # to them (shards 2 and 1 of 3), so they moved without loss
    from compute.runner import runner_name

    reshard = run["restart"]["reshard"]
    assert run["restart"]["holders"] == [[runner_name(reshard - 1 - s)] for s in range(len(run["restart"]["after"]))]
    for before, after in zip(run["restart"]["before"], run["restart"]["after"]):
        exact(after)
        kept = {chunk["index"]: chunk for chunk in before["chunks"]}
        assert all(chunk == kept[chunk["index"]] for chunk in after["chunks"] if chunk["index"] in kept)
        runs = Counter(after["runs"])
        assert set(runs) == set(range(len(after["chunks"])))
        assert sum(count - 1 for count in runs.values()) <= 2  # at most what was in flight
