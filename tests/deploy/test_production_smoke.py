"""The production configuration, run without Docker: every process started exactly as its
docker-compose.yml service starts it (same command, same environment, as many replicas), on
PostgreSQL and Redis with DEBUG off and JSON logs, the API under gunicorn with gunicorn.conf.py.
The eight reference payloads go in over HTTP and complete; then every process gets SIGTERM and
must exit 0 within its service's stop_grace_period.

What differs from a container, and why: the servers are the test's (pytest-django's database,
the test Redis, a stream prefix of its own); each process gets its own metrics port and
heartbeat file (containers have a network and a /tmp each); handlers answer offline (the
payloads name hosts that do not exist)."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests import reference_payloads
from tests.databases import runner_database_url
from tests.deploy.deployment_files import RUNNER_SERVICES, env_example, load_compose
from tests.deploy.test_compose import seconds
from tests.faults.api import EngineApi, over_http
from tests.faults.processes import Fleet, Runner, api_command, prepare_database
from tests.faults.servers import free_port
from tests.polling import poll_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# From the machine, as a container would get them from its image.
INHERITED = ("PATH", "HOME", "LANG", "TMPDIR")


def service_environment(service: dict, **overrides: str) -> dict[str, str]:
    """A compose service's environment with this machine's servers in place of compose's."""
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    return {**inherited, **service["environment"], "PYTHONUNBUFFERED": "1", **overrides}


def local_command(command: list[str]) -> list[str]:
    """A compose command with this virtualenv's interpreter and a free metrics port."""
    local = [sys.executable if word == "python" else word for word in command]
    if "--metrics-port" in local:
        local[local.index("--metrics-port") + 1] = str(free_port())
    return local


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def compose() -> dict:
    secret_key = secrets.token_urlsafe(50)
    return load_compose({**env_example(), "POSTGRES_PASSWORD": "unused", "SECRET_KEY": secret_key})


@pytest.fixture
def production(compose, stream_prefix, tmp_path) -> dict[str, str]:
    """What replaces compose's servers in every service's environment."""
    return {
        "DATABASE_URL": runner_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STREAM_PREFIX": stream_prefix,
        "VAR_DIR": str(tmp_path / "var"),
        "HANDLERS_OFFLINE": "1",
    }


def test_the_production_stack_runs_the_reference_payloads_and_stops_cleanly(compose, production, tmp_path):
    services = compose["services"]
    fleet = Fleet(service_environment(services["api"], **production), tmp_path / "logs")
    try:
        run_and_stop(fleet, services, production, tmp_path)
    finally:
        fleet.closed.set()
        for runner in fleet.runners:
            if runner.alive():
                runner.process.kill()


def run_and_stop(fleet: Fleet, services: dict, production: dict, tmp_path: Path) -> None:
    token = prepare_database(service_environment(services["migrate"], **production))
    api_environment = services["api"]["environment"]
    assert [Path(word).name for word in api_command()] == services["api"]["command"]
    api, base_url = fleet.start_api(workers=int(api_environment["GUNICORN_WORKERS"]))
    heartbeats: dict[str, Path] = {}
    metrics_ports: dict[str, int] = {}
    for role in RUNNER_SERVICES:
        for replica in range(1, services[role]["deploy"]["replicas"] + 1):
            name = f"{role}-{replica}"
            heartbeats[name] = tmp_path / f"{name}.heartbeat"
            command = local_command(services[role]["command"])
            metrics_ports[name] = int(command[command.index("--metrics-port") + 1])
            environment = service_environment(
                services[role], **production, RUNNER_HEARTBEAT_FILE=str(heartbeats[name])
            )
            fleet.start(name, command=command, env=environment, supervised=False)
    fleet.wait_started(fleet.runners)

    check_health(base_url)
    check_reference_payloads_complete(
        EngineApi(over_http(base_url, token), check=fleet.check_unsupervised_alive)
    )
    check_production_behaviour(base_url, api)
    check_runners_live(services, heartbeats, metrics_ports)

    grace = {"api": seconds(services["api"]["stop_grace_period"])}
    grace.update(
        (name, seconds(services[name.rsplit("-", 1)[0]]["stop_grace_period"])) for name in heartbeats
    )
    codes = fleet.stop_all(grace)
    assert codes == dict.fromkeys(codes, 0), f"not every process exited 0 within its grace period: {codes}"
    assert set(codes) == {"api", *heartbeats}


def check_health(base_url: str) -> None:
    health = httpx.get(f"{base_url}/health", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["checks"]["database"] == "ok" and health.json()["checks"]["redis"] == "ok"


def check_reference_payloads_complete(api: EngineApi) -> None:
    executions = {name: api.run(reference_payloads.load(name)) for name in reference_payloads.NAMES}
    for name, execution_id in executions.items():
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", (name, final)
        assert set(final["node_statuses"].values()) <= {"COMPLETED", "SKIPPED"}, (name, final)


def check_production_behaviour(base_url: str, api: Runner) -> None:
    """DEBUG off (no technical 404 page), and one JSON access line per request."""
    missing = httpx.get(f"{base_url}/no-such-page", timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "DEBUG = True" not in missing.text

    def access_lines() -> list[dict]:
        return [line for line in json_lines(api.log()) if line.get("event") == "http_request"]

    poll_until(
        lambda: any(line["path"] == "/no-such-page" and line["status"] == 404 for line in access_lines()),
        what="the 404's access line",
    )
    assert any(line["path"] == "/health" and line["status"] == 200 for line in access_lines())


def check_runners_live(services: dict, heartbeats: dict[str, Path], metrics_ports: dict[str, int]) -> None:
    """Each runner's compose healthcheck passes on its heartbeat, and its /metrics answers."""
    check = services["worker"]["healthcheck"]["test"]
    for name, heartbeat in heartbeats.items():
        done = subprocess.run(  # nosec B603  # the compose file's own healthcheck
            [sys.executable, *check[2:]],
            env={**os.environ, "RUNNER_HEARTBEAT_FILE": str(heartbeat)},
            capture_output=True,
            timeout=30,
        )
        assert done.returncode == 0, (name, done.stderr)
        exposition = httpx.get(f"http://127.0.0.1:{metrics_ports[name]}/metrics", timeout=10)
        assert exposition.status_code == 200, name
    reaper = httpx.get(f"http://127.0.0.1:{metrics_ports['reaper-1']}/metrics", timeout=10).text
    assert "workflow_reaper_actions_total" in reaper
