"""The Ray Serve shell around the FastAPI app (``serve run serve_app.deployment:app``)."""

from ray import serve

from serve_app.app import create_app


# The replica is I/O-bound (Redis, actor calls): it reserves no CPU, so every core is left for chunks.
@serve.deployment(name="ApiGateway", max_ongoing_requests=200, health_check_period_s=5,
                  ray_actor_options={"num_cpus": 0})
@serve.ingress(create_app)
class ApiGateway:
    """Routes, middleware and dependencies all live in the FastAPI app built on each replica."""


def build_app(args: dict | None = None):
    """Application builder for ``serve run``/``serve deploy`` (``args`` may set ``num_replicas``)."""
    args = args or {}
    deployment = ApiGateway
    if "num_replicas" in args:
        deployment = deployment.options(num_replicas=int(args["num_replicas"]))
    return deployment.bind()


app = build_app()
