"""A real multi-node Ray cluster on one machine: chunks spread over nodes, and a node lost mid-job.

The cluster (``ray.cluster_utils.Cluster``: a 0-CPU head and two 1-CPU worker nodes, each with its own
raylet) and a private redis-server run in a separate driver process, tests/cluster/multinode_driver.py,
because this pytest process may already be connected to the session's Ray. The driver gets a private
RAY_TMPDIR, so Ray's "current cluster" file (which ``Cluster`` writes) and its session dirs stay private.
"""

from __future__ import annotations

import pytest

from tests.support.cluster_driver import REPO, run_driver


@pytest.fixture(scope="module")
def multinode_run():
    yield from run_driver(REPO / "tests" / "cluster" / "multinode_driver.py", timeout=240)


def test_a_kind_asking_for_a_custom_resource_runs_only_where_it_is(multinode_run):
    job = multinode_run["special"]
    assert job["status"] == "completed", job
    assert job["result"] == job["expected"] == 4000 * 4001 // 2
    assert len(job["chunks"]) == 6
    assert {chunk["node_id"] for chunk in job["chunks"]} == {multinode_run["special_node_id"]}


def test_chunks_run_on_several_nodes_with_an_exact_result(multinode_run):
    job = multinode_run["spread"]
    assert job["status"] == "completed", job
    assert job["result"] == job["expected"] == 4000 * 4001 // 2
    nodes = {chunk["node_id"] for chunk in job["chunks"]}
    assert len(job["chunks"]) == 8
    assert len(nodes) >= 2, f"all chunks ran on {nodes}"
    assert nodes <= set(multinode_run["worker_node_ids"]), "a chunk ran on the 0-CPU head"


def test_a_job_survives_losing_a_worker_node(multinode_run):
    job = multinode_run["node_loss"]
    assert job["status"] == "completed", job
    assert job["result"] == job["expected"] == 6000 * 6001 // 2
    assert len(job["chunks"]) == 4
    removed = job["removed_node_id"]
    survivor = (set(multinode_run["worker_node_ids"]) - {removed}).pop()
    assert job["killed_chunks"], "no chunk was running on the node when it was removed"
    assert job["done_when_removed"] < 4
    by_index = {chunk["index"]: chunk for chunk in job["chunks"]}
    for index in job["killed_chunks"]:
        # the killed chunk was run again, from the start, on the node that is left (Ray's max_retries)
        assert by_index[index]["node_id"] == survivor
        assert by_index[index]["started_at"] >= job["removed_at"]
    # nothing ran on the removed node after it was gone
    assert all(c["node_id"] == survivor for c in job["chunks"] if c["ended_at"] > job["removed_at"] + 1)
    assert multinode_run["alive_nodes_after"] == 2  # the head and the survivor
