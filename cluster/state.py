"""What ``cluster up`` keeps under ``DATA_DIR`` (default ``.data``), and the state file in it.

``stack.json`` is how the other commands find the running stack: ``down`` signals its pid, ``status``
asks its URL for health, ``submit`` takes its dashboard and Redis URL. ``up`` writes it once the app
is healthy and removes it when it stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", ".data"))


def state_file() -> Path:
    return data_dir() / "stack.json"


def write_state(state: dict) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # the Redis URL may hold a password
    path.write_text(json.dumps(state))


def read_state() -> dict | None:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def remove_state() -> None:
    state_file().unlink(missing_ok=True)
