"""With Redis unreachable (a port nothing listens on), the API tells the truth: what needs
Redis now answers 503 with a clear error and Retry-After, never a 500; what can be done without
it is done, and its publish follows once Redis is back (the reaper re-publishes QUEUED rows)."""

import pytest
import redis

from tests.faults.servers import free_port
from tests.redis_clients import forget_redis_clients
from tests.workflows.api_driver import assert_error, submit, workflow
from workflows.api.errors import exception_handler
from workflows.models import Execution, TaskRun
from workflows.outages import reason

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def redis_down(settings, streams):
    """REDIS_URL names a port nothing listens on; the streams module connects anew (and back to
    the real Redis afterwards, which the stream keys' clean-up needs)."""
    real = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    forget_redis_clients()
    yield
    settings.REDIS_URL = real
    forget_redis_clients()


def test_a_long_poll_answers_503_redis_unavailable(alice_client, fast_password_hashing, streams, redis_down):
    execution_id = submit(alice_client, workflow({"id": "a", "handler": "input"}))["execution_id"]

    response = alice_client.get(f"/api/v1/workflow/{execution_id}", {"wait": 1})

    error = assert_error(response, 503, "redis_unavailable")
    assert "Redis" in error["message"] and "retry" in error["message"]
    assert response["Retry-After"] == "5"


def test_a_trigger_is_accepted_and_its_roots_wait_queued_for_redis(
    alice_client, fast_password_hashing, streams, redis_down
):
    execution_id = submit(alice_client, workflow({"id": "a", "handler": "input"}))["execution_id"]

    response = alice_client.post(f"/api/v1/workflow/trigger/{execution_id}", {}, format="json")

    assert response.status_code == 202, response.content
    assert Execution.objects.get(pk=execution_id).status == Execution.Status.RUNNING
    assert TaskRun.objects.get(execution_id=execution_id).status == TaskRun.Status.QUEUED
    assert alice_client.get(f"/api/v1/workflow/{execution_id}").status_code == 200  # reads need no Redis


def test_a_cancel_is_accepted_and_its_stop_flag_stays_owed_for_the_reaper(
    alice_client, fast_password_hashing, streams, redis_down, django_capture_on_commit_callbacks
):
    execution_id = submit(alice_client, workflow({"id": "a", "handler": "input"}))["execution_id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.delete(f"/api/v1/workflow/{execution_id}")

    assert response.status_code == 200, response.content
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Execution.Status.CANCELLED
    assert execution.stop_flag_stale, "Redis refused the flag: it stays owed (stop_flags.sync)"


@pytest.mark.parametrize(
    "refusal",
    [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ResponseError(
            "Command # 1 (EVAL ...) of pipeline caused error: Error running script: "
            "-OOM command not allowed when used memory > 'maxmemory'."
        ),
    ],
)
def test_a_full_redis_is_503_redis_full_whether_a_command_or_a_script_was_refused(refusal):
    response = exception_handler(refusal, {})

    assert response.status_code == 503
    assert response.data["error"]["code"] == "redis_full"
    assert reason(refusal) == "redis_full"
