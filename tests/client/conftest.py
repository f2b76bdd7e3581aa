"""A live API for the client's tests: gunicorn and the engine's runners as real processes
(`tests.faults.processes.Fleet`) on pytest-django's test database, started once for this package.

The client only speaks HTTP, so the tests themselves touch no database (their `django_db` mark
only has pytest-django create it): users and tokens are made and committed here, before any
test, and the database is flushed when the package is done (the runners stopped first), leaving
nothing behind for the rest of the suite.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from orchestrator_client import AsyncClient, Client, RetryPolicy
from tests.databases import runner_database_environment
from tests.faults.processes import Fleet, prepare_database
from workflows import streams

# The trigger and retry timings of a test run: tasks picked up within 0.2 s, failed attempts
# retried within a second.
RUNNER_TIMINGS = {"RUNNER_BLOCK_MS": "200", "RETRY_BACKOFF_BASE": "0.2", "REAPER_INTERVAL_SECONDS": "0.5"}


@dataclass(frozen=True)
class LiveApi:
    """The API's base URL and tokens: an operator's (bootstrap's admin), an ordinary user's, and
    one of a user only the throttling test uses (per-user rate windows start empty)."""

    url: str
    operator_token: str
    user_token: str
    unused_token: str
    fleet: Fleet

    def env(self, token: str | None = None) -> dict[str, str]:
        """The environment a CLI process finds the API in."""
        return {
            **os.environ,
            "ORCHESTRATOR_URL": self.url,
            "ORCHESTRATOR_TOKEN": token or self.operator_token,
        }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the runners' logs to a failed test's report."""
    report = yield
    live = getattr(item, "funcargs", {}).get("live_api")
    if report.failed and isinstance(live, LiveApi):
        for runner in live.fleet.runners:
            report.sections.append((f"runner log: {runner.name}", runner.log_tail()))
    return report


@pytest.fixture(scope="package")
def live_api(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveApi]:
    """gunicorn (as the Dockerfile starts it: threads for long polls), a worker, an orchestrator
    and the reaper."""
    prefix = f"test-client-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **runner_database_environment(),
        "REDIS_URL": settings.REDIS_URL,
        "STREAM_PREFIX": prefix,
        # The reference payloads name hosts that do not exist: answer offline, as `make run` does.
        "HANDLERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        # bootstrap keeps the admin's credentials there, not in the checkout's var/.
        "VAR_DIR": str(tmp_path_factory.mktemp("var")),
        **RUNNER_TIMINGS,
    }
    fleet = Fleet(env, tmp_path_factory.mktemp("logs"))
    try:
        operator_token = prepare_database(env)
        api, url = fleet.start_api(workers=1)
        fleet.start_engine(workers=1, concurrency=8)
        fleet.wait_started([api])
        users = [new_user_token(django_db_blocker, name) for name in ("casey", "fresh")]
        yield LiveApi(url, operator_token, *users, fleet)
    finally:
        codes = fleet.stop_all()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
        redis = streams.redis_client()
        keys = list(redis.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            redis.delete(*keys)
    assert all(code == 0 for code in codes.values()), f"runners did not exit cleanly on SIGTERM: {codes}"


def new_user_token(django_db_blocker, name: str) -> str:
    """A new ordinary user (no operator permissions) and its API token."""
    with django_db_blocker.unblock():
        user = get_user_model().objects.create_user(f"{name}-{uuid.uuid4().hex[:8]}", password=None)
        return Token.objects.create(user=user).key


# One attempt, no waiting: a test of error answers sees the first one.
NO_RETRIES = RetryPolicy(max_attempts=1)


@pytest.fixture
def client(live_api) -> Iterator[Client]:
    """The sync client as the operator (who may also triage dead letters)."""
    with Client(live_api.url, live_api.operator_token) as client:
        yield client


@pytest.fixture
def async_client_factory(live_api):
    """`AsyncClient`s are made inside the test's event loop: this makes one as the operator."""
    return lambda: AsyncClient(live_api.url, live_api.operator_token)
