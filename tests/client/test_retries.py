"""Retries: a real API's throttle, and a scripted server for answers a healthy API rarely gives
(503, a long Retry-After, no answer at all)."""

import json
import time
import uuid

import pytest

from orchestrator_client import Client, RateLimited, RetryPolicy, ServerUnreachable, Unavailable
from tests.client import dags
from tests.client.conftest import NO_RETRIES
from tests.local_servers import Canary, Reply, ScriptedServer

pytestmark = pytest.mark.django_db

QUICK = RetryPolicy(max_attempts=3, backoff_base=0.01)


@pytest.fixture
def throttled_api(live_api) -> str:
    """A second API process on the same engine, allowing each user one submit per second."""
    api, url = live_api.fleet.start_api(workers=1, env={"THROTTLE_SUBMIT": "1/s"})
    live_api.fleet.wait_started([api])
    yield url
    live_api.fleet.stop(api)


@pytest.fixture
def scripted() -> ScriptedServer:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def status_body(client) -> dict:
    """A real status answer, to be replayed by the scripted server."""
    submitted = client.submit(dags.conditional())
    client.trigger(submitted.execution_id, params={"data": "no"})
    client.wait(submitted.execution_id, timeout=60)
    return client.http.get(f"workflow/{submitted.execution_id}").json()


def test_a_throttled_submit_is_sent_again_after_retry_after(live_api, throttled_api):
    impatient = Client(throttled_api, live_api.unused_token, retry=NO_RETRIES)
    with impatient, pytest.raises(RateLimited) as refused:
        for _ in range(3):  # two submits may straddle a window's end: the third cannot
            impatient.submit(dags.conditional())
    started = time.monotonic()

    with Client(throttled_api, live_api.unused_token) as patient:
        submitted = [patient.submit(dags.conditional()) for _ in range(3)]

    assert refused.value.status == 429 and refused.value.code == "throttled"
    assert refused.value.retry_after == 1 and refused.value.details["scope"] == "submit"
    assert len({s.execution_id for s in submitted}) == 3
    assert time.monotonic() - started >= 1.0  # three submits need at least two window ends


def test_429_then_200_waits_retry_after_then_answers(scripted, status_body):
    answers = iter(
        [Reply(429, {"error": {"code": "throttled", "message": "slow down"}}, {"Retry-After": "1"})]
    )
    path = f"/api/v1/workflow/{status_body['execution_id']}"
    scripted.route(path, lambda hit: next(answers, Reply(200, status_body)))
    started = time.monotonic()

    with Client(scripted.url(), "token") as client:
        status = client.status(status_body["execution_id"])

    assert status.status == "COMPLETED" and status.node_statuses["false_branch"] == "COMPLETED"
    assert len(scripted.hits_on(path)) == 2
    assert time.monotonic() - started >= 1.0


def test_503_on_a_trigger_is_sent_again_the_server_did_not_act(scripted):
    unavailable = Reply(
        503, {"error": {"code": "redis_unavailable", "message": "retry"}}, {"Retry-After": "0.2"}
    )
    answers = iter([unavailable, unavailable])
    triggered = {"execution_id": "e1", "status": "RUNNING", "message": "Execution started."}
    scripted.route("/api/v1/workflow/trigger/e1", lambda hit: next(answers, Reply(202, triggered)))

    with Client(scripted.url(), "token") as client:
        answer = client.trigger("e1", {"x": 1})

    assert answer.status == "RUNNING"
    assert [hit.method for hit in scripted.hits] == ["POST"] * 3
    assert json.loads(scripted.hits[-1].body) == {"params": {"x": 1}}


def test_a_retry_after_beyond_the_policy_is_not_waited_for(scripted):
    scripted.route(
        "/api/v1/workflow/e1",
        Reply(503, {"error": {"code": "database_unavailable", "message": "busy"}}, {"Retry-After": "120"}),
    )
    started = time.monotonic()

    with Client(scripted.url(), "token") as client, pytest.raises(Unavailable) as refused:
        client.status("e1")

    assert refused.value.retry_after == 120 and refused.value.code == "database_unavailable"
    assert len(scripted.hits) == 1 and time.monotonic() - started < 5


def test_a_newer_server_with_more_fields_does_not_break_the_client(scripted, status_body):
    newer = {**status_body, "cost_cents": 12, "progress": {**status_body["progress"], "paused": 0}}
    scripted.route(f"/api/v1/workflow/{status_body['execution_id']}", Reply(200, newer))

    with Client(scripted.url(), "token") as client:
        status = client.status(status_body["execution_id"])

    assert status.execution_id == status_body["execution_id"] and status.progress.total == 4
    assert not hasattr(status, "cost_cents") and not hasattr(status.progress, "paused")


@pytest.fixture
def dead_end() -> Canary:
    """Accepts connections and closes them at once: no request ever gets an answer."""
    canary = Canary()
    yield canary
    canary.close()


def test_reads_are_retried_when_the_connection_fails(dead_end):
    client = Client(f"http://127.0.0.1:{dead_end.port}", "token", retry=QUICK)
    with client, pytest.raises(ServerUnreachable):
        client.status(str(uuid.uuid4()))

    assert dead_end.connections == 3


def test_a_write_is_not_sent_twice_unless_it_carries_an_idempotency_key(dead_end):
    with Client(f"http://127.0.0.1:{dead_end.port}", "token", retry=QUICK) as client:
        with pytest.raises(ServerUnreachable):
            client.trigger(str(uuid.uuid4()))
        assert dead_end.connections == 1  # it may have started the execution: never twice
        with pytest.raises(ServerUnreachable):
            client.submit(dags.conditional(), idempotency_key="nightly-1")

    assert dead_end.connections == 1 + 3


def test_backoff_doubles_up_to_its_bound_less_some_jitter():
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_max=4.0, jitter=0.2)

    delays = [policy.backoff(attempt) for attempt in range(1, 7)]

    for delay, full in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert 0.8 * full <= delay <= full
    assert policy.delay(10, ServerUnreachable("x"), repeatable=True) is None  # attempts spent
