"""A short soak in the suite (python -m tests.fault.soak --duration N for longer runs)."""

from tests.fault.soak import SOAK_SETTINGS, run
from tests.support.local_stack import LocalStackProcess


def test_short_soak_loses_nothing(tmp_path):
    stack = LocalStackProcess(tmp_path, **SOAK_SETTINGS).start()
    try:
        summary = run(stack.url, duration=20, clients=16, stack_pid=stack.process.pid)
    finally:
        assert stack.stop() == 0
    print(summary)
    assert summary["accepted"] >= 20
    assert summary["lost"] == 0 and summary["wrong"] == 0
    assert summary["accepted"] == summary["completed"] + summary["failed_by_design"]
    assert summary["rejected"] == 0
