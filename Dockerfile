# syntax=docker/dockerfile:1
#
# One image for every Ray node of ray-jobs: the head (Ray head + dashboard +
# Serve app, `python -m cluster up ...`) and the workers (`ray start
# --address=... --block`). The role is chosen by the command, see
# docker-compose.yml.
#
#   docker build -t ray-jobs:local .

# Pinned: a rebuild next month gets the same Python. The project requires
# Python 3.11 (pyproject.toml), and every Ray node and client must run the
# same Python minor version and Ray version.
FROM python:3.11.9-slim-bookworm

# HOST=0.0.0.0: inside a container the app must listen on all interfaces; the
# published ports (docker-compose.yml) decide what the host exposes.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    RAY_DASHBOARD_PORT=8265 \
    RAY_USAGE_STATS_ENABLED=0

# Unprivileged user that runs Ray; Ray writes under /tmp/ray and ~/.ray, the
# app under DATA_DIR (/app/.data, made writable below).
RUN groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid ray --create-home --shell /bin/bash ray

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that code changes do not
# reinstall Ray. Every version there is pinned (ray[serve,default]==2.60.0).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (dependencies already satisfied). frontend/ is not
# part of the wheel: serve_app/routes/pages.py looks for it next to the
# serve_app source, so every process (the driver and each Ray worker, which
# inherit PYTHONPATH) imports the project from /app, where frontend/ sits.
COPY serve_app ./serve_app
COPY compute ./compute
COPY cluster ./cluster
COPY frontend ./frontend
COPY serve_config.yaml ./
ENV PYTHONPATH=/app
RUN pip install --no-deps . \
    && python -c "import serve_app, compute, cluster" \
    && mkdir -p /app/.data \
    && chown ray:ray /app/.data

# Numeric (= the "ray" user above), so runtimes can verify it is not root.
USER 1000:1000

# 8000: Serve HTTP API (head). 8265: Ray dashboard (head; publish it on the
# host's loopback only). Workers reach the head's GCS on 6380 inside the
# container network, which needs no EXPOSE.
EXPOSE 8000 8265

# Works for both roles: `ray health-check` asks the GCS of the cluster this
# container joined (address from /tmp/ray/ray_current_cluster, written by
# `ray start`; token from RAY_AUTH_MODE/RAY_AUTH_TOKEN in the environment)
# whether it is up. On a worker that means "joined and the head answers";
# the worker's own raylet is covered by `ray start --block`, which exits (and
# stops the container) when a Ray process of the node dies. The head service
# in docker-compose.yml replaces this with a check of the HTTP API
# (/monitoring/health), which also proves that Serve and the app are up.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["ray", "health-check", "--skip-version-check"]

# Default role: a head node. docker-compose.yml sets the command per service.
CMD ["python", "-m", "cluster", "up", "--ray-port", "6380", "--dashboard-host", "0.0.0.0"]
