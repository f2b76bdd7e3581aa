"""docker-compose.yml and .env.example, checked without a Docker engine: the topology parsed and
asserted, and `docker compose config` run as well where a compose client is installed."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from tests.deploy.deployment_files import (
    COMPOSE_FILE,
    COMPOSE_ONLY_VARIABLES,
    ENGINE_SERVICES,
    ENV_EXAMPLE,
    RUNNER_SERVICES,
    MissingVariable,
    compose_defaults,
    env_example,
    env_example_lines,
    interpolate,
    load_compose,
    variables_read_by_code,
)
from tests.deploy.gunicorn_settings import gunicorn_settings

SERVICES = {"postgres", "redis", "migrate", "api", "worker", "orchestrator", "reaper"}
# Set by compose itself, whatever .env says: its own servers, its log format, the runners'
# heartbeat file and the API's address.
SET_BY_COMPOSE = {"DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "RUNNER_HEARTBEAT_FILE", "GUNICORN_BIND"}
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds(duration: str) -> float:
    """A compose duration (`45s`, `1m30s`) in seconds."""
    assert re.fullmatch(rf"(?:{DURATION.pattern})+", duration), duration
    return sum(float(amount) * DURATION_SECONDS[unit] for amount, unit in DURATION.findall(duration))


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_the_services_and_their_replicas(services):
    assert set(services) == SERVICES
    assert {name: services[name]["deploy"]["replicas"] for name in RUNNER_SERVICES} == {
        "worker": 3,
        "orchestrator": 2,
        "reaper": 1,
    }


def test_scaling_needs_no_other_change(services):
    """`--scale worker=30 --scale orchestrator=5`: no fixed container name, no host port."""
    for name, service in services.items():
        assert "container_name" not in service, name
    for name in RUNNER_SERVICES:
        assert "ports" not in services[name], name
    assert services["api"]["ports"] == ["8000:8000"]


def test_every_service_waits_on_health_conditions(services):
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] in {"service_healthy", "service_completed_successfully"}, name
            if condition["condition"] == "service_healthy":
                assert "test" in services[dependency]["healthcheck"], dependency
    for name in ENGINE_SERVICES:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name == "migrate":
            assert service["healthcheck"] == {"disable": True}
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert service["restart"] == "unless-stopped", name
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "http://localhost:8000/health" in api_check


def test_data_lives_in_named_volumes(compose, services):
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert services["redis"]["volumes"] == ["redisdata:/data"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}
    for name in ENGINE_SERVICES:
        assert "volumes" not in services[name], f"{name} must keep no state of its own"


def test_redis_persists_and_never_evicts(services):
    command = services["redis"]["command"]
    assert command[0] == "redis-server"
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--appendfsync") == "everysec"
    assert option(command, "--maxmemory-policy") == "noeviction"
    assert option(command, "--maxmemory") == env_example()["REDIS_MAXMEMORY"]


def test_the_commands_are_the_ones_the_roles_run(services):
    assert services["api"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "orchestrator_site.wsgi"]
    assert services["api"]["environment"]["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    for name, command in (
        ("worker", "runworker"),
        ("orchestrator", "runorchestrator"),
        ("reaper", "runreaper"),
    ):
        assert services[name]["command"][:3] == ["python", "manage.py", command]
        assert option(services[name]["command"], "--metrics-port") == "9100"


def test_stop_grace_periods_outlast_every_drain(services):
    environment = services["worker"]["environment"]
    block = float(environment["RUNNER_BLOCK_MS"]) / 1000
    drain = float(option(services["worker"]["command"], "--drain-timeout"))
    assert seconds(services["worker"]["stop_grace_period"]) > drain + block
    graceful = gunicorn_settings(services["api"]["environment"]).graceful_timeout
    assert graceful > float(environment["LONG_POLL_MAX_SECONDS"])
    assert seconds(services["api"]["stop_grace_period"]) > graceful
    # An orchestrator finishes the batch in hand: one blocking read, one transaction.
    assert seconds(services["orchestrator"]["stop_grace_period"]) > block + 10
    reaper_interval = float(environment["REAPER_INTERVAL_SECONDS"])
    assert seconds(services["reaper"]["stop_grace_period"]) > reaper_interval + 10


def test_the_engine_gets_every_setting_the_code_reads(services):
    for name in ("migrate", *ENGINE_SERVICES):
        environment = services[name]["environment"]
        assert set(environment) >= variables_read_by_code() - {"RUNNER_HEARTBEAT_FILE", "GUNICORN_BIND"}, name
        assert environment["LOG_FORMAT"] == "json"
        assert environment["DEBUG"] == "false"
        assert environment["DATABASE_URL"] == "postgres://orchestrator:example@postgres:5432/orchestrator"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "localhost" in environment["ALLOWED_HOSTS"].split(","), "the healthcheck's host"
    for name in RUNNER_SERVICES:
        assert services[name]["environment"]["RUNNER_HEARTBEAT_FILE"] == "/tmp/runner-heartbeat"


def test_compose_defaults_are_the_env_example_values():
    example = env_example()
    defaults = compose_defaults()
    assert set(defaults) - set(example) == set(), "a compose variable missing from .env.example"
    differing = {
        name: (value, example[name])
        for name, value in defaults.items()
        if name not in SET_BY_COMPOSE and value != example[name]
    }
    assert differing == {}


def test_required_variables_stop_compose_with_a_message():
    for missing in ("POSTGRES_PASSWORD", "SECRET_KEY"):
        environment = {**env_example(), "POSTGRES_PASSWORD": "example", "SECRET_KEY": "example"}
        environment[missing] = ""
        with pytest.raises(MissingVariable, match=f"{missing}: set {missing} in .env"):
            load_compose(environment)


def test_interpolation_follows_compose():
    environment = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET:-x} ${EMPTY:-x} ${EMPTY-x} ${UNSET-x} ${UNSET} $$HOME", environment) == (
        "value x  x  $HOME"
    )


def test_env_example_is_valid_for_compose():
    """compose reads `KEY=value # note` with the note as part of the value: comments stay on
    their own lines, and nothing trails a value."""
    names = []
    for number, line in env_example_lines():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), f".env.example:{number}: {line!r}"
        assert "#" not in line, f".env.example:{number}: an inline comment would be part of the value"
        names.append(line.split("=", 1)[0])
    assert len(names) == len(set(names)), "a variable listed twice"
    assert not ENV_EXAMPLE.read_text().endswith((" ", "\t"))


def test_env_example_lists_exactly_the_variables_the_code_reads():
    listed = set(env_example()) - COMPOSE_ONLY_VARIABLES
    assert listed - variables_read_by_code() == set(), "listed but never read"
    assert variables_read_by_code() - listed == set(), "read but not listed"


@pytest.mark.parametrize(
    ("age_seconds", "healthy"), [(0, True), (50, True), (70, False), (None, False)], ids=str
)
def test_the_runner_healthcheck_reads_the_heartbeat_age(services, tmp_path, age_seconds, healthy):
    """The compose healthcheck of the runners, run as is: fresh heartbeat healthy, a stale or
    missing one not."""
    check = services["worker"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"]
    heartbeat = tmp_path / "runner-heartbeat"
    if age_seconds is not None:
        heartbeat.touch()
        then = time.time() - age_seconds
        os.utime(heartbeat, (then, then))
    done = subprocess.run(  # nosec B603  # the compose file's own healthcheck
        [sys.executable, *check[2:]],
        env={**os.environ, "RUNNER_HEARTBEAT_FILE": str(heartbeat)},
        capture_output=True,
        timeout=30,
    )
    assert (done.returncode == 0) is healthy, done.stderr


def compose_client() -> list[str] | None:
    """`docker-compose`, or `docker compose` when the plugin answers; None without either."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:  # nosec B603
        return [docker, "compose"]
    return None


def test_compose_accepts_the_file_where_a_client_is_installed(tmp_path):
    """The parse-based checks above always run; this one adds the client's own verdict where a
    compose client exists (`make test` installs Debian's docker-compose: scripts/ensure-compose.sh)."""
    client = compose_client()
    if client is None:
        # Without a client, the file must at least be the YAML compose would read.
        assert isinstance(yaml.safe_load(COMPOSE_FILE.read_text()), dict)
        return
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "POSTGRES_PASSWORD=example\nSECRET_KEY=example\n")
    done = subprocess.run(  # nosec B603
        [*client, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert set(resolved) == SERVICES
    assert resolved["worker"]["deploy"]["replicas"] == 3
