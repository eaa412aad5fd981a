"""Stopping a process the stack started: SIGTERM first, so it can stop what it started in turn, and
SIGKILL if it has not exited in time. Redis and the Ray head are stopped this way."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
