"""The JWT signing secret for a development stack, kept under DATA_DIR.

The app signs login tokens with ``JWT_SECRET`` and issues none without it. So that ``make run`` works
with no settings, ``cluster up`` generates one the first time and reuses it: logins survive
restarts. In production the secret must come from the environment: a missing one is an error there.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_jwt_secret(directory: Path) -> None:
    """Set ``JWT_SECRET`` from ``directory/jwt_secret`` (created, mode 600, if missing) unless it is set."""
    if os.environ.get("JWT_SECRET"):
        return
    if os.environ.get("ENVIRONMENT") == "production":
        raise RuntimeError("JWT_SECRET must be set when ENVIRONMENT=production")
    path = directory / "jwt_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    os.environ["JWT_SECRET"] = path.read_text().strip()
