"""Offline checks of the deployment files: no Ray cluster, no Docker, no cloud.

- ray-cluster.yaml (AWS) and cluster/configs/gcp.yaml go through Ray's own launcher
  validation (``prepare_config`` + ``validate_config``, both offline: they merge the
  provider's packaged defaults.yaml and check ray-schema.json; only ``ray up``'s later
  ``bootstrap_config`` step talks to the cloud), plus the project's own rules.
- serve_config.yaml goes through Serve's own pydantic schema (what ``serve deploy`` runs),
  plus the checks Serve only does at deploy time or not at all.
- docker-compose.yml, Dockerfile and .env.example are checked structurally.

Every validator is also run on deliberately broken copies, so these tests can fail.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

CLUSTER_CONFIGS = {
    "aws": ROOT / "ray-cluster.yaml",
    "gcp": ROOT / "cluster" / "configs" / "gcp.yaml",
}
SERVE_CONFIG = ROOT / "serve_config.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

COMMAND_KEYS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)
RAY_PORT = 6380
RAY_VERSION = "2.60.0"

# Variables the application and its deployment read (README / settings); .env.example
# must document every one of them.
REQUIRED_ENV_VARS = {
    "PROJECT_NAME", "ENVIRONMENT", "REDIS_URL", "REDIS_KEY_PREFIX", "BACKEND_CORS_ORIGINS", "TRUSTED_PROXIES",
    "MAX_BODY_BYTES", "RATE_LIMIT_ENABLED", "RATE_LIMIT_JOBS", "RATE_LIMIT_DEMO",
    "RATE_LIMIT_LOGIN", "DEMO_MAX_N", "DEMO_MAX_CHUNKS", "MAX_N", "MAX_CHUNKS",
    "MAX_ACTIVE_JOBS_PER_USER", "JWT_SECRET", "JWT_ISSUER", "JWT_AUDIENCE",
    "JWT_EXPIRE_MINUTES", "JWT_JWKS_URL", "RAY_DASHBOARD_URL", "JOB_TTL_SECONDS",
    "JOB_TIMEOUT_SECONDS", "CHUNK_MAX_RETRIES", "RAY_NAMESPACE", "EXTRA_JOB_KIND_MODULES",
    "HOST", "PORT", "RAY_DASHBOARD_PORT", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
}


# ----------------------------------------------------------------------------- helpers


def load_yaml(path: Path):
    with path.open() as f:
        return yaml.safe_load(f)


def ray_validate(cfg: dict) -> dict:
    """What `ray up` does before touching the cloud; raises on an invalid config."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    return prepared


def all_commands(cfg: dict) -> list[str]:
    return [cmd for key in COMMAND_KEYS for cmd in (cfg.get(key) or [])]


def worker_types(cfg: dict) -> dict:
    return {name: t for name, t in cfg["available_node_types"].items() if name != cfg["head_node_type"]}


def ray_start_commands(cfg: dict) -> list[str]:
    cmds = [c for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] if "ray start" in c]
    assert cmds, "no `ray start` command found"
    return cmds


def python_m_modules(text: str) -> set[str]:
    return set(re.findall(r"\bpython3?(?:\.\d+)?\s+-m\s+([A-Za-z_][\w.]*)", text))


def project_packages() -> set[str]:
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"serve_app", "compute", "cluster"}


def module_path_exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2).strip().strip('"').strip("'")
    return values


def compose_command(service: dict) -> str:
    cmd = service.get("command", "")
    return shlex.join(cmd) if isinstance(cmd, list) else str(cmd)


def healthcheck_text(service: dict) -> str:
    test = (service.get("healthcheck") or {}).get("test", "")
    return " ".join(test) if isinstance(test, list) else str(test)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


# ----------------------------------------------------------------- (a) Ray validation


@pytest.fixture(scope="module", params=sorted(CLUSTER_CONFIGS))
def cluster_cfg(request):
    return request.param, load_yaml(CLUSTER_CONFIGS[request.param])


def test_cluster_config_passes_ray_validation(cluster_cfg):
    cloud, cfg = cluster_cfg
    prepared = ray_validate(cfg)
    assert prepared["provider"]["type"] == cloud


def test_raw_yaml_alone_is_not_what_ray_validates(cluster_cfg):
    # Guards the helper above: validate_config needs prepare_config's output
    # (it fills cluster_synced_files etc. from the provider's defaults).
    from ray.autoscaler._private.util import validate_config

    _, cfg = cluster_cfg
    raw = copy.deepcopy(cfg)
    raw.pop("cluster_synced_files", None)
    with pytest.raises(RuntimeError, match="cluster_synced_files"):
        validate_config(raw)


def _rename(d: dict, old: str, new: str) -> None:
    d[new] = d.pop(old)


BROKEN_CLUSTER_CASES = {
    "typo idel_timeout_minutes": (
        lambda c: _rename(c, "idle_timeout_minutes", "idel_timeout_minutes"),
        jsonschema.ValidationError,
    ),
    "typo in a node type (max_worker)": (
        lambda c: _rename(next(iter(worker_types(c).values())), "max_workers", "max_worker"),
        jsonschema.ValidationError,
    ),
    "worker min_workers > max_workers": (
        lambda c: next(iter(worker_types(c).values())).update(min_workers=c["max_workers"] + 1),
        ValueError,
    ),
    "head_node_type not a node type": (lambda c: c.update(head_node_type="no-such-type"), ValueError),
    "node type without resources": (
        lambda c: next(iter(worker_types(c).values())).pop("resources"),
        jsonschema.ValidationError,
    ),
    "negative CPU resource": (
        lambda c: next(iter(worker_types(c).values())).update(resources={"CPU": -1}),
        jsonschema.ValidationError,
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CLUSTER_CASES))
def test_broken_cluster_config_is_rejected_by_ray(cluster_cfg, case):
    _, cfg = cluster_cfg
    mutate, error = BROKEN_CLUSTER_CASES[case]
    broken = copy.deepcopy(cfg)
    mutate(broken)
    with pytest.raises(error):
        ray_validate(broken)


def test_no_launcher_defaults_leak_in(cluster_cfg):
    # prepare_config merges the file over the provider's defaults.yaml key by key;
    # those defaults install a nightly wheel and open the dashboard on 0.0.0.0.
    _, cfg = cluster_cfg
    prepared = ray_validate(cfg)
    for cmd in all_commands(prepared):
        assert "ray-wheels" not in cmd and "dev0" not in cmd, cmd
        assert "0.0.0.0" not in cmd, cmd
    assert prepared["head_setup_commands"] == cfg["setup_commands"] + cfg["head_setup_commands"]
    assert prepared["worker_setup_commands"] == cfg["setup_commands"] + cfg["worker_setup_commands"]


# -------------------------------------------------------- (b) the project's own rules


def test_autoscaling_bounds(cluster_cfg):
    _, cfg = cluster_cfg
    assert cfg["head_node_type"] in cfg["available_node_types"]
    assert cfg["max_workers"] > 0
    assert 0 < cfg["idle_timeout_minutes"] <= 60
    workers = worker_types(cfg)
    assert workers, "no worker node type"
    for name, node_type in workers.items():
        # Ray only checks the sum of min_workers against the global max_workers.
        assert node_type["min_workers"] == 0, f"{name}: workers must scale to zero"
        assert 0 < node_type["max_workers"] <= cfg["max_workers"], name
        assert node_type["min_workers"] <= node_type["max_workers"], name
        assert node_type["resources"].get("CPU", 0) > 0, f"{name}: a worker type needs CPUs for chunks"


def test_token_auth_on_every_ray_start(cluster_cfg):
    _, cfg = cluster_cfg
    for cmd in ray_start_commands(cfg):
        before = cmd[: cmd.index("ray start")]
        assert re.search(r"\bexport RAY_AUTH_MODE=token\b", before), cmd
        # The token itself must come from a file the command sources (RAY_AUTH_TOKEN).
        assert re.search(r"(^|[;&\s])(\.|source)\s+\S+", before), cmd
        assert "RAY_AUTH_MODE=disabled" not in cmd


def test_sourced_files_are_mounted(cluster_cfg):
    _, cfg = cluster_cfg
    mounts = cfg["file_mounts"]
    for cmd in all_commands(cfg):
        for path in re.findall(r"(?:^|[;&]\s*|\s)(?:\.|source)\s+(\S+?);", cmd):
            if path == "~/.bashrc":
                continue
            assert path in mounts, f"{path} is sourced but not in file_mounts"


def test_local_mount_sources_exist(cluster_cfg):
    _, cfg = cluster_cfg
    for remote, local in cfg["file_mounts"].items():
        if not local.startswith(("~", "/")):
            assert (ROOT / local).exists(), f"file_mounts {remote}: {local} is missing from the repo"


def test_dashboard_only_on_localhost(cluster_cfg):
    _, cfg = cluster_cfg
    head_start = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    assert len(head_start) == 1
    assert "--head" in head_start[0]
    assert "--dashboard-host=127.0.0.1" in head_start[0]
    for cmd in all_commands(cfg):
        assert "0.0.0.0" not in cmd, cmd
        assert not re.search(r"--dashboard-host[= ](?!127\.0\.0\.1\b)", cmd), cmd


def test_head_and_workers_agree_on_gcs_port(cluster_cfg):
    _, cfg = cluster_cfg
    (head,) = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    (worker,) = [c for c in cfg["worker_start_ray_commands"] if "ray start" in c]
    assert f"--port={RAY_PORT}" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert f"--address=$RAY_HEAD_IP:{RAY_PORT}" in worker


def test_pinned_installation(cluster_cfg):
    import ray

    _, cfg = cluster_cfg
    setup = " ".join(cfg["setup_commands"])
    pins = re.findall(r"ray\[([^\]]*)\]==([\d.]+)", setup)
    assert pins, "setup_commands must pin ray[serve,default]==X.Y.Z"
    for extras, version in pins:
        assert {"serve", "default"} <= {e.strip() for e in extras.split(",")}
        assert version == RAY_VERSION == ray.__version__
    for cmd in cfg["setup_commands"] + cfg["head_setup_commands"] + cfg["worker_setup_commands"]:
        for token in shlex.split(cmd):
            requirement = re.match(r"^ray(\[[^\]]*\])?(?=$|[<>=!~ ])(.*)$", token)
            assert not requirement or requirement.group(2).startswith("=="), f"unpinned Ray: {token!r}"
    refs = re.findall(r"git\+https://\S+?@([\w.\-]+)", setup)
    assert refs, "install the project from a pinned git tag or commit"
    assert all(ref not in {"main", "master", "HEAD"} for ref in refs), refs


def test_serve_deploy_after_head_start(cluster_cfg):
    _, cfg = cluster_cfg
    cmds = cfg["head_start_ray_commands"]
    start = next(i for i, c in enumerate(cmds) if "ray start --head" in c)
    deploy = [i for i, c in enumerate(cmds) if "serve deploy serve_config.yaml" in c]
    assert deploy and deploy[0] > start
    cmd = cmds[deploy[0]]
    assert re.search(r"\bexport RAY_AUTH_MODE=token\b", cmd), "serve deploy talks to the token-protected dashboard"
    workdir = re.search(r"\bcd\s+(\S+?);", cmd)
    assert workdir, "serve deploy must run in the directory serve_config.yaml is mounted to"
    mounts = cfg["file_mounts"]
    assert mounts.get(f"{workdir.group(1)}/serve_config.yaml") == "serve_config.yaml"


def test_aws_and_gcp_start_nodes_the_same_way():
    aws, gcp = (load_yaml(CLUSTER_CONFIGS[c]) for c in ("aws", "gcp"))
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands", "file_mounts"):
        assert aws[key] == gcp[key], key
    assert aws["provider"].get("region")
    assert gcp["provider"].get("project_id")


# ------------------------------------------------------------------- (c) serve_config


def serve_validate(cfg: dict):
    """Serve's own schema plus what Serve checks only at deploy time or never."""
    from ray.runtime_env import RuntimeEnv
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import DeploymentSchema, ServeApplicationSchema, ServeDeploySchema

    schema = ServeDeploySchema.model_validate(cfg)
    for app in cfg["applications"]:
        # Unknown keys are silently ignored by these models, so a typo would be lost.
        unknown = set(app) - set(ServeApplicationSchema.model_fields)
        if unknown:
            raise ValueError(f"unknown application keys {unknown}")
        RuntimeEnv(**(app.get("runtime_env") or {}))
        for dep in app.get("deployments") or []:
            unknown = set(dep) - set(DeploymentSchema.model_fields)
            if unknown:
                raise ValueError(f"unknown deployment keys {unknown}")
            if dep.get("autoscaling_config") is not None:
                auto = dep["autoscaling_config"]
                unknown = set(auto) - set(AutoscalingConfig.model_fields)
                if unknown:
                    raise ValueError(f"unknown autoscaling_config keys {unknown}")
                auto_cfg = AutoscalingConfig.model_validate(auto)
                if "max_ongoing_requests" in dep and dep["max_ongoing_requests"] < auto_cfg.target_ongoing_requests:
                    raise ValueError("max_ongoing_requests below target_ongoing_requests: never scales up")
    return schema


@pytest.fixture(scope="module")
def serve_cfg():
    return load_yaml(SERVE_CONFIG)


def test_serve_config_passes_serve_schema(serve_cfg):
    schema = serve_validate(serve_cfg)
    (app,) = schema.applications
    assert app.name == "ray-jobs"
    assert app.route_prefix == "/"
    assert app.import_path == "serve_app.deployment:app"
    assert schema.http_options.host == "0.0.0.0"
    assert schema.http_options.port == 8000


def test_serve_config_settings(serve_cfg):
    (app,) = serve_cfg["applications"]
    env = app["runtime_env"]["env_vars"]
    assert "REDIS_URL" in env
    assert env["ENVIRONMENT"] == "production"
    assert env["RATE_LIMIT_ENABLED"] == "true"
    assert "JWT_SECRET" not in env or env["JWT_SECRET"].startswith("${"), "no secret in the config file"
    (dep,) = app["deployments"]
    assert dep["name"] == "ApiGateway"
    auto = dep["autoscaling_config"]
    assert (auto["min_replicas"], auto["max_replicas"]) == (1, 4)
    assert auto["target_ongoing_requests"] > 0
    assert dep["max_ongoing_requests"] > 0


BROKEN_SERVE_CASES = {
    "num_replicas with autoscaling_config": lambda c: c["applications"][0]["deployments"][0].update(num_replicas=2),
    "no import_path": lambda c: c["applications"][0].pop("import_path"),
    "max_ongoing_requests 0": lambda c: c["applications"][0]["deployments"][0].update(max_ongoing_requests=0),
    "min_replicas > max_replicas": lambda c: c["applications"][0]["deployments"][0]["autoscaling_config"].update(
        min_replicas=5, max_replicas=4
    ),
    "typo max_ongoing_request": lambda c: _rename(
        c["applications"][0]["deployments"][0], "max_ongoing_requests", "max_ongoing_request"
    ),
    "non-string env var": lambda c: c["applications"][0]["runtime_env"]["env_vars"].update(RATE_LIMIT_ENABLED=True),
    "bad proxy_location": lambda c: c.update(proxy_location="Everywhere"),
    "port not a number": lambda c: c["http_options"].update(port="eighty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SERVE_CASES))
def test_broken_serve_config_is_rejected(serve_cfg, case):
    broken = copy.deepcopy(serve_cfg)
    BROKEN_SERVE_CASES[case](broken)
    with pytest.raises((ValueError, TypeError)):  # pydantic's ValidationError is a ValueError
        serve_validate(broken)


def test_serve_import_path_exists_in_repo(serve_cfg):
    for app in serve_cfg["applications"]:
        module, _, attr = app["import_path"].partition(":")
        path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
        assert path.is_file(), f"{path.relative_to(ROOT)} (import_path {app['import_path']}) does not exist yet"
        tree = ast.parse(path.read_text())
        names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                 if isinstance(t, ast.Name)}
        names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert attr in names, f"{module} defines no top-level {attr!r}"
        # Serve refuses config overrides for deployments the application does not have.
        source = path.read_text()
        for dep in app.get("deployments") or []:
            assert dep["name"] in source, f"deployment {dep['name']!r} not found in {module}"


# --------------------------------------------------------------- (d) docker-compose


@pytest.fixture(scope="module")
def compose():
    return load_yaml(COMPOSE_FILE)


def test_compose_services(compose):
    assert {"redis", "ray-head", "ray-worker"} <= set(compose["services"])


def test_compose_redis(compose):
    redis = compose["services"]["redis"]
    image, _, tag = redis["image"].partition(":")
    assert image == "redis" and re.match(r"^7\.2(\.\d+)?", tag), redis["image"]
    assert "--appendonly yes" in compose_command(redis)
    data_mounts = [v for v in redis.get("volumes", []) if str(v).endswith(":/data")]
    assert data_mounts, "redis needs a volume on /data"
    volume = data_mounts[0].split(":")[0]
    assert not volume.startswith((".", "/", "~")), "use a named volume, not a bind mount"
    assert volume in (compose.get("volumes") or {})


def test_compose_healthchecks_and_ordering(compose):
    services = compose["services"]
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    assert "/monitoring/health" in healthcheck_text(services["ray-head"])
    assert services["ray-head"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_compose_dashboard_only_on_host_loopback(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            spec = str(port)
            if spec.split(":")[-1].split("/")[0] == "8265":
                assert spec == "127.0.0.1:8265:8265", f"{name}: {spec}"
    assert "127.0.0.1:8265:8265" in compose["services"]["ray-head"]["ports"]
    assert "8000:8000" in compose["services"]["ray-head"]["ports"]


def test_compose_ray_commands_and_token(compose):
    head, worker = compose["services"]["ray-head"], compose["services"]["ray-worker"]
    head_cmd = compose_command(head)
    assert "python -m cluster up" in head_cmd
    port = re.search(r"--ray-port[= ](\d+)", head_cmd).group(1)
    assert re.search(r"--dashboard-host[= ]0\.0\.0\.0", head_cmd)  # inside the container; published on loopback
    worker_cmd = compose_command(worker)
    assert f"ray start --address=ray-head:{port}" in worker_cmd and "--block" in worker_cmd
    for service in (head, worker):
        env_file = service.get("env_file")
        assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)
        env = service["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert str(env["RAY_AUTH_TOKEN"]).startswith("${RAY_AUTH_TOKEN")
        assert "redis://redis:6379/0" in str(env["REDIS_URL"])


def test_compose_worker_is_scalable(compose):
    worker = compose["services"]["ray-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "fixed host ports break --scale"


def yaml_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from yaml_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_strings(item)
    elif isinstance(node, str):
        yield node


def test_compose_variables_are_documented(compose):
    # From the parsed file, so that comments do not count; $${X} is a literal "${X}".
    used = {m for text in yaml_strings(compose)
            for m in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text)}
    assert used, "compose should take its settings from .env"
    missing = used - set(parse_env_file(ENV_EXAMPLE))
    assert not missing, f"used in docker-compose.yml but not in .env.example: {sorted(missing)}"


def test_python_m_modules_exist():
    texts = {
        "docker-compose.yml": " ".join(compose_command(s) for s in load_yaml(COMPOSE_FILE)["services"].values()),
        "Dockerfile": DOCKERFILE.read_text(),
    }
    for path in CLUSTER_CONFIGS.values():
        texts[path.name] = " ".join(all_commands(load_yaml(path)))
    # JSON-form CMD ["python", "-m", "x"] too
    texts["Dockerfile"] += " " + " ".join(
        " ".join(re.findall(r'"([^"]*)"', args)) for word, args in dockerfile_instructions(DOCKERFILE)
        if word in {"CMD", "ENTRYPOINT", "RUN", "HEALTHCHECK"}
    )
    found = {}
    for name, text in texts.items():
        for module in python_m_modules(text):
            found.setdefault(module, set()).add(name)
    assert "cluster" in found
    ours = project_packages()
    for module, where in sorted(found.items()):
        if module.split(".")[0] in ours:
            assert module_path_exists(module), f"`python -m {module}` ({', '.join(sorted(where))}): " \
                f"no {module.replace('.', '/')}.py or {module.replace('.', '/')}/__main__.py in the repo yet"
        else:
            assert importlib.util.find_spec(module) is not None, module


# ------------------------------------------------------------------ (e) Dockerfile


def test_dockerfile():
    instructions = dockerfile_instructions(DOCKERFILE)
    froms = [args.split()[0] for word, args in instructions if word == "FROM"]
    assert froms
    for image in froms:
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        assert tag and tag != "latest", f"unpinned base image {image}"
        assert re.search(r"\d+\.\d+\.\d+", tag), f"pin a full version, not {image}"
    users = [args.split(":")[0] for word, args in instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must end as a non-root USER"
    healthchecks = [args for word, args in instructions if word == "HEALTHCHECK"]
    assert healthchecks and not healthchecks[-1].upper().startswith("NONE")
    exposed = {p.split("/")[0] for word, args in instructions if word == "EXPOSE" for p in args.split()}
    assert {"8000", "8265"} <= exposed
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"pip install\b[^&;]*\s\.(\s|$)", runs), "the image must install the project (pip install .)"
    for word, args in instructions:
        if word == "COPY" and "--from" not in args:
            for src in args.split()[:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"COPY {src}: not in the repo"


# ---------------------------------------------------------------- .env.example


def test_env_example_lists_every_variable():
    text = ENV_EXAMPLE.read_text()
    values = parse_env_file(ENV_EXAMPLE)
    missing = REQUIRED_ENV_VARS - set(values)
    assert not missing, f"missing from .env.example: {sorted(missing)}"
    # ... and every variable the settings classes read (pydantic aliases).
    aliases = set()
    for path in [*ROOT.glob("serve_app/**/*.py"), *ROOT.glob("compute/**/*.py"), *ROOT.glob("cluster/**/*.py")]:
        aliases |= set(re.findall(r"""alias\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", path.read_text()))
    assert not aliases - set(values), f"settings read but not in .env.example: {sorted(aliases - set(values))}"
    lines = text.splitlines()
    keys = [re.match(r"^([A-Z][A-Z0-9_]*)=", ln).group(1) for ln in lines if re.match(r"^[A-Z][A-Z0-9_]*=", ln)]
    assert len(keys) == len(set(keys)), "duplicate keys"
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        assert re.match(r"^[A-Z][A-Z0-9_]*=\S*$|^[A-Z][A-Z0-9_]*=\"[^\"]*\"$", line), f"line {i + 1}: {line!r}"
        assert lines[i - 1].startswith("#"), f"line {i + 1}: {line.split('=')[0]} has no comment above it"


def test_env_example_ships_no_usable_secret():
    values = parse_env_file(ENV_EXAMPLE)
    assert len(values["JWT_SECRET"]) < 32, "a copied .env.example must not pass the production secret check"
    assert values["RAY_AUTH_TOKEN"] == ""
    assert values["RAY_AUTH_MODE"] == "token"
    assert values["REDIS_URL"] == "redis://redis:6379/0"
