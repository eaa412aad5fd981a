"""After the whole session: no secret ever reached a log of the stack (Ray, Serve, replicas, workers)."""

import re
from pathlib import Path

import pytest

PASSWORDS = ["correct horse battery", "long enough pw", "another password", "fuzzing password"]
TOKEN_PATTERNS = [
    re.compile(r"rjt_[A-Za-z0-9_-]{43}"),                                 # API tokens
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
]


@pytest.mark.last
def test_no_secret_appears_in_any_log(ray_session, base_url, api, user):
    import ray

    # make sure this session produced authenticated traffic worth auditing
    assert api.post("/me/tokens", json={"name": "audit"}, headers=user["headers"]).status_code == 201
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert files, "no Ray logs found"
    secrets = [ray_session["JWT_SECRET"], *PASSWORDS]
    leaks = []
    for path in files:
        text = path.read_text(errors="replace")
        leaks += [f"{path.name}: secret #{i}" for i, secret in enumerate(secrets) if secret in text]
        leaks += [f"{path.name}: {pattern.pattern[:12]}..." for pattern in TOKEN_PATTERNS if pattern.search(text)]
    assert not leaks, leaks
