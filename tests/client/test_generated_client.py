"""A client generated from the live `/openapi.json` by a real generator (openapi-python-client) works:
the schema is good enough for drop-in tooling, operation ids and all."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PACKAGE = "rayjobs_generated"


@pytest.fixture
def generated(base_url, tmp_path):
    """The generated package, imported from a temporary folder (and forgotten afterwards)."""
    bin_dir = str(Path(sys.executable).parent)  # the generator runs ruff, installed beside it, on its output
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--url", f"{base_url}/openapi.json",
         "--output-path", str(tmp_path / PACKAGE), "--meta", "none", "--fail-on-warning"],
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_a_generated_client_runs_a_demo_job(generated, base_url, client_ip):
    create_demo_job = importlib.import_module(f"{PACKAGE}.api.demo.create_demo_job")
    get_demo_job = importlib.import_module(f"{PACKAGE}.api.demo.get_demo_job")
    models = importlib.import_module(f"{PACKAGE}.models")

    transport = httpx.HTTPTransport(local_address=client_ip)
    with generated.Client(base_url=base_url, httpx_args={"transport": transport}) as api:
        accepted = create_demo_job.sync(client=api, body=models.DemoJobCreate(n=1000, chunks=4))
        assert isinstance(accepted, models.JobAccepted), accepted
        deadline = time.monotonic() + 60
        while (job := get_demo_job.sync(accepted.job_id, client=api)).status != models.JobStatus.COMPLETED:
            assert isinstance(job, models.JobOut) and job.status in (models.JobStatus.PENDING, models.JobStatus.RUNNING)
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert (job.result, job.total_chunks) == (500_500, 4)

        refused = create_demo_job.sync_detailed(client=api, body=models.DemoJobCreate(n=10**9, chunks=4))
        assert refused.status_code == 422
        assert isinstance(refused.parsed, models.ValidationErrorOut) and refused.parsed.errors[0].field == "n"
