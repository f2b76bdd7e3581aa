"""What the runners do for a deployment: a heartbeat file for the container healthcheck, aged
connections retired, bounded statements, a refusal to run on a Redis that may evict, and hot
statements that can stop being prepared for PgBouncer."""

import os
import signal
import subprocess

import pytest
import redis
from django.conf import settings
from django.db import connection
from structlog.testing import capture_logs

from tests.clock import ManualClock
from tests.databases import runner_database_url
from tests.faults.processes import manage
from tests.faults.servers import RedisServer
from workflows.runner import StopFlag, Upkeep, bound_runner_statements, run_until_stopped
from workflows.stack import start_embedded_redis
from workflows.streams import RedisMayEvict, Streams


def age(path) -> float:
    return path.stat().st_mtime


def test_the_heartbeat_is_touched_at_most_once_a_second(tmp_path):
    heartbeat = tmp_path / "heartbeat"
    clock = ManualClock()
    upkeep = Upkeep(str(heartbeat), clock=clock.monotonic)

    upkeep.tick()
    assert heartbeat.exists()
    os.utime(heartbeat, (1, 1))
    clock.advance(0.5)
    upkeep.tick()
    assert age(heartbeat) == 1, "touched again within the second"
    clock.advance(0.5)
    upkeep.tick()
    assert age(heartbeat) > 1


def test_no_heartbeat_file_without_the_setting(tmp_path):
    Upkeep("", clock=ManualClock().monotonic).tick()
    assert list(tmp_path.iterdir()) == []


def test_the_runner_loop_beats_while_it_turns(settings, tmp_path):
    settings.RUNNER_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    steps = []

    run_until_stopped(lambda: steps.append(1), StopFlag(), once=True)

    assert steps == [1] and (tmp_path / "heartbeat").exists()


class RedisWithPolicy:
    """A Redis client stand-in answering CONFIG GET maxmemory-policy, or refusing CONFIG."""

    def __init__(self, policy: str | None):
        self.policy = policy

    def config_get(self, name: str) -> dict:
        if self.policy is None:
            raise redis.ResponseError("unknown command 'CONFIG'")
        return {name: self.policy}


def test_an_evicting_policy_is_refused_with_the_fix_named():
    with pytest.raises(RedisMayEvict, match=r"maxmemory-policy is 'allkeys-lru'.*Refusing to start"):
        Streams(RedisWithPolicy("allkeys-lru"), "p").check_no_eviction()
    Streams(RedisWithPolicy("noeviction"), "p").check_no_eviction()


def test_a_redis_without_config_is_accepted_with_a_warning():
    """Managed Redis often disables or renames CONFIG: the runner starts and says what to check."""
    with capture_logs() as logs:
        Streams(RedisWithPolicy(None), "p").check_no_eviction()
    [event] = [e for e in logs if e["event"] == "redis_eviction_policy_unknown"]
    assert event["log_level"] == "warning"


def test_the_test_redis_and_a_bare_redis_server_do_not_evict(tmp_path):
    assert redis.Redis.from_url(settings.REDIS_URL).config_get("maxmemory-policy") == {
        "maxmemory-policy": "noeviction"
    }
    server = RedisServer(tmp_path / "bare", appendonly=False)  # redis-server's own default
    server.start()
    try:
        assert server.client().config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        server.stop()


def test_the_embedded_redis_does_not_evict(tmp_path):
    process = start_embedded_redis(tmp_path)
    try:
        client = redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"))
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["runworker", "runorchestrator", "runreaper"])
def test_a_runner_refuses_to_start_on_an_evicting_redis(tmp_path, command):
    server = RedisServer(tmp_path / "evicting", appendonly=False)
    server.start()
    try:
        server.client().config_set("maxmemory-policy", "allkeys-lru")
        done = subprocess.run(  # nosec B603  # this interpreter's manage.py
            manage(command, "--once"),
            env={**os.environ, "DATABASE_URL": runner_database_url(), "REDIS_URL": server.url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
    assert done.returncode == 1
    assert "CommandError: Redis maxmemory-policy is 'allkeys-lru'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db(transaction=True)
def test_runner_sessions_bound_their_statements():
    options = connection.settings_dict["OPTIONS"]["options"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",), "the API's sessions: DB_STATEMENT_TIMEOUT_MS, 0 by default"
    try:
        bound_runner_statements()
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("1min",)
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone() == ("5s",)
    finally:
        connection.settings_dict["OPTIONS"]["options"] = options
        connection.close()


PREPARED_AFTER_TEN_RUNS = """
from django.db import connection
from structlog.testing import capture_logs
from workflows.bulk_sql import hot_cursor
for _ in range(10):
    with hot_cursor() as cursor:
        cursor.execute("SELECT %s::int", [1])
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    print(cursor.fetchone()[0])
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("threshold", "prepared"), [("5", 1), ("0", 0)])
def test_prepared_statements_can_be_turned_off_for_pgbouncer(threshold, prepared):
    """DB_PREPARE_THRESHOLD=0: the hot statements are never prepared on the server (PgBouncer
    in transaction mode before 1.21 would hand them to another client's session)."""
    done = subprocess.run(  # nosec B603  # this interpreter's manage.py
        manage("shell", "-c", PREPARED_AFTER_TEN_RUNS),
        env={**os.environ, "DATABASE_URL": runner_database_url(), "DB_PREPARE_THRESHOLD": threshold},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == prepared
