"""The README's "Add your own job kind" tutorial: its example module, loaded through
EXTRA_JOB_KIND_MODULES by the session's stack (tests/support/stack.py), runs as the README says."""

from compute.kinds.context import ChunkContext, JobContext
from examples.kinds import monte_carlo_pi
from tests.support.jobs import wait_for_job


def run_in_process(params: dict, chunks: int) -> dict:
    """The same kind, called directly: what the service must answer."""
    kind = monte_carlo_pi.KIND
    inputs = kind.split(kind.Params(**params), chunks, None)
    outputs = [kind.run_chunk(chunk, ChunkContext("local", None, index=i)) for i, chunk in enumerate(inputs)]
    return kind.combine(outputs, JobContext("local", None))


def test_the_example_kind_is_listed_and_runs_as_the_tutorial_shows(api):
    kinds = {k["name"]: k for k in api.get("/kinds").json()["kinds"]}
    example = kinds["monte_carlo_pi"]
    assert example["params_schema"]["properties"]["samples"]["maximum"] == 10_000_000_000
    assert example["demo"] and example["demo_max"] == {"samples": 50_000_000} and example["deterministic"]
    params = {"samples": 2_000_000, "seed": 7}
    response = api.post("/jobs/demo", json={"kind": "monte_carlo_pi", "params": params, "chunks": 4})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, f"/jobs/demo/{response.json()['job_id']}")
    assert job["status"] == "completed", job
    assert job["result"] == run_in_process(params, 4)
    assert abs(job["result"]["pi"] - 3.14159) < 0.01
    chunks = api.get(f"/jobs/demo/{job['job_id']}/chunks").json()["chunks"]
    assert [(c["start"], c["end"]) for c in chunks] == [(0, 499_999), (500_000, 999_999), (1_000_000, 1_499_999),
                                                        (1_500_000, 1_999_999)]
    too_many = api.post("/jobs/demo", json={"kind": "monte_carlo_pi", "params": {"samples": 60_000_000}})
    assert too_many.status_code == 422
    error = too_many.json()["errors"][0]
    assert error["field"] == "params.samples" and "at most 50,000,000 for demo jobs" in error["message"]
