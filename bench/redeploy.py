"""``python -m bench.redeploy N``: redeploy the running stack's Serve app with N ApiGateway replicas.

Connects to the Ray cluster named by RAY_ADDRESS (the stack's GCS, set by bench.project) and calls
``serve.run(build_app({"num_replicas": N}))`` under the app name and route the stack uses. The
replicas start on that cluster's raylet, so they get the stack's environment, as at start-up.
"""

import sys

import ray
from ray import serve

from cluster.deploy import APP_NAME
from serve_app.deployment import build_app


def main() -> int:
    count = int(sys.argv[1])
    ray.init(logging_level="ERROR", log_to_driver=False)
    try:
        serve.run(build_app({"num_replicas": count}), name=APP_NAME, route_prefix="/")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
