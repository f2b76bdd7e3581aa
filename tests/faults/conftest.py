"""Fault-injection fixtures: the engine's runners as real processes, the effects ledger, and
throwaway Redis / PostgreSQL servers for the tests that take a server away.

The runners are configured only through their environment, with short timings so that every
recovery path (reclaim, re-publish, retry, circuit reset) happens within seconds.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.databases import runner_database_url

# Registers the test handlers in this process too, so the API accepts workflows that use them.
from tests.faults import handlers  # noqa: F401
from tests.faults.api import EngineApi, in_process
from tests.faults.ledger import URL_VARIABLE, Ledger
from tests.faults.processes import Fleet
from tests.faults.servers import PostgresCluster, RedisServer
from tests.redis_clients import forget_redis_clients

FLEET = pytest.StashKey[Fleet]()
SERVER_LOGS = pytest.StashKey[list[Path]]()
FAST_TIMINGS = {
    "VISIBILITY_TIMEOUT_SECONDS": "2",
    "REAPER_INTERVAL_SECONDS": "0.2",
    "REPUBLISH_AFTER_SECONDS": "2",
    "RUNNER_BLOCK_MS": "200",
    "RETRY_BACKOFF_BASE": "0.2",
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the runners' (and throwaway servers') logs to a failed setup, call or teardown."""
    report = yield
    if report.failed:
        fleet = item.stash.get(FLEET, None)
        for runner in fleet.runners if fleet else []:
            title = f"runner log: {runner.name} (pid {runner.pid}, earlier exits {runner.exits})"
            report.sections.append((title, runner.log_tail()))
        for path in item.stash.get(SERVER_LOGS, []):
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            report.sections.append((f"server log: {path}", text[-6000:]))
    return report


@pytest.fixture
def ledger(transactional_db) -> Ledger:
    """The effects ledger, in the test database (no fault test stops that server)."""
    book = Ledger(runner_database_url())
    book.create_table()
    return book


@pytest.fixture
def fleet(request, transactional_db, stream_prefix, ledger, tmp_path) -> Fleet:
    """The runners of this test (the test starts them); all stopped with SIGTERM at the end,
    before the database is flushed and the stream keys deleted, and all must exit 0."""
    env = {
        **os.environ,
        "DATABASE_URL": runner_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STREAM_PREFIX": stream_prefix,
        "HANDLER_MODULES": "tests.faults.handlers",
        URL_VARIABLE: ledger.url,
        # Without this a log may miss the last lines of a child that was killed.
        "PYTHONUNBUFFERED": "1",
        **FAST_TIMINGS,
    }
    engine = Fleet(env, tmp_path / "logs")
    request.node.stash[FLEET] = engine
    yield engine
    codes = engine.stop_all()
    assert all(code == 0 for code in codes.values()), f"runners did not exit cleanly on SIGTERM: {codes}"


@pytest.fixture
def api(fleet, alice_client) -> EngineApi:
    """The REST API as alice (token auth), failing early if a runner nobody restarts died."""
    return EngineApi(in_process(alice_client), check=fleet.check_unsupervised_alive)


@pytest.fixture
def operator_api(fleet, operator_client) -> EngineApi:
    """The REST API as a staff user (DLQ triage)."""
    return EngineApi(in_process(operator_client), check=fleet.check_unsupervised_alive)


@pytest.fixture
def throwaway_redis(request, stream_prefix, tmp_path):
    """Start a Redis of its own, `throwaway_redis(appendonly=...)`, used by this process too.

    Request it before `fleet`, so the runners are stopped before the server is.
    """
    servers: list[RedisServer] = []
    overrides: list[override_settings] = []

    def start(*, appendonly: bool) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", appendonly)
        request.node.stash.setdefault(SERVER_LOGS, []).append(server.log_path)
        servers.append(server)
        server.start()
        override = override_settings(REDIS_URL=server.url)
        override.enable()
        overrides.append(override)
        forget_redis_clients()
        return server

    yield start
    for override in reversed(overrides):
        override.disable()
    forget_redis_clients()
    for server in servers:
        server.stop()


@pytest.fixture
def throwaway_postgres(request):
    """A PostgreSQL cluster of its own, started, with an empty `orchestrator` database."""
    cluster = PostgresCluster()
    request.node.stash.setdefault(SERVER_LOGS, []).append(cluster.log_path)
    try:
        cluster.init()
        cluster.start()
        cluster.create_database("orchestrator")
        yield cluster
    finally:
        cluster.remove()
