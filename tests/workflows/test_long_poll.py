"""Long poll on the status endpoint: `GET /api/v1/workflow/{id}?wait=S` answers as soon as the
execution ends, woken through Redis by whoever ended it, or after S seconds with the state then."""

import threading
import time

import pytest

from tests.conftest import token_client
from workflows.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)

TWO_NODES = {
    "name": "two nodes",
    "dag": {
        "nodes": [
            {"id": "start", "handler": "input"},
            {"id": "finish", "handler": "output", "dependencies": ["start"]},
        ]
    },
}


def status_path(execution: Execution, wait: str) -> str:
    return f"/api/v1/workflow/{execution.id}?wait={wait}"


def run_to_the_end_later(worker, orchestrate, delay: float) -> threading.Thread:
    """In another thread, as the worker and orchestrator processes would: after `delay`, run
    both nodes and apply their completions."""

    def later():
        time.sleep(delay)
        for _ in range(2):
            for entry in worker.take().values():
                worker.succeed(entry)
            orchestrate()

    thread = threading.Thread(target=later)
    thread.start()
    return thread


def test_a_waiting_request_answers_when_the_orchestrator_ends_the_execution(
    start_workflow, alice_client, worker, orchestrate
):
    execution = start_workflow(TWO_NODES)
    thread = run_to_the_end_later(worker, orchestrate, delay=0.3)

    began = time.monotonic()
    response = alice_client.get(status_path(execution, "20"))
    waited = time.monotonic() - began
    thread.join()

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETED"
    assert body["node_statuses"] == {"start": "COMPLETED", "finish": "COMPLETED"}
    # Woken by the end, not by the 20 s deadline.
    assert waited < 10


def test_a_wait_that_runs_out_answers_with_the_state_at_that_moment(start_workflow, alice_client):
    execution = start_workflow(TWO_NODES)

    response = alice_client.get(status_path(execution, "0.2"))

    assert response.status_code == 200
    assert response.json()["status"] == "RUNNING"


def test_an_execution_that_has_ended_answers_at_once(start_workflow, alice_client, worker, orchestrate):
    execution = start_workflow(TWO_NODES)
    run_to_the_end_later(worker, orchestrate, delay=0).join()

    response = alice_client.get(status_path(execution, "30"))

    assert response.json()["status"] == "COMPLETED"


def test_cancel_wakes_the_waiters(start_workflow, alice, alice_client):
    execution = start_workflow(TWO_NODES)
    other_client = token_client(alice)
    canceller = threading.Timer(0.3, lambda: other_client.delete(f"/api/v1/workflow/{execution.id}"))
    canceller.start()

    began = time.monotonic()
    response = alice_client.get(status_path(execution, "20"))
    canceller.join()

    assert response.json()["status"] == "CANCELLED"
    assert time.monotonic() - began < 10


@pytest.mark.parametrize("wait", ["soon", "-1", "31", "nan", "inf"])
def test_a_wait_out_of_range_is_refused(start_workflow, alice_client, wait):
    execution = start_workflow(TWO_NODES)

    response = alice_client.get(status_path(execution, wait))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_wait"
    assert "from 0 to 30" in error["message"]


def test_waiting_on_someone_elses_execution_is_not_found(start_workflow, bob_client):
    execution = start_workflow(TWO_NODES)

    response = bob_client.get(status_path(execution, "5"))

    assert response.status_code == 404


def test_a_resumed_execution_is_waited_for_again_and_its_tasks_run_again(streams):
    """A retried dead letter resumes its failed execution: the next waiter waits for the new
    end, and workers no longer drop its tasks."""
    streams.sync_stop_flags(ended=["e1"])
    assert streams.wait_finished("e1", 0.01)
    assert streams.cancelled_executions(["e1"]) == {"e1"}

    streams.sync_stop_flags(live=["e1"])

    assert not streams.wait_finished("e1", 0.05)
    assert streams.cancelled_executions(["e1"]) == set()


def test_a_wait_longer_than_the_redis_clients_default_timeout_answers_the_state_then(
    start_workflow, alice_client
):
    """redis-py's default socket timeout is 5 s: a blocking read past it answered 500."""
    execution = start_workflow(TWO_NODES)

    began = time.monotonic()
    response = alice_client.get(status_path(execution, "6"))

    assert response.status_code == 200
    assert response.json()["status"] == "RUNNING"
    assert time.monotonic() - began >= 6


def test_long_polls_past_the_users_bound_are_refused_with_retry_after(start_workflow, alice, settings):
    settings.LONG_POLL_MAX_PER_USER = 2
    execution = start_workflow(TWO_NODES)
    waiters = [
        threading.Thread(target=token_client(alice).get, args=(status_path(execution, "3"),))
        for _ in range(2)
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)  # both are now blocked in their read

    refused = token_client(alice).get(status_path(execution, "3"))
    plain_poll = token_client(alice).get(f"/api/v1/workflow/{execution.id}")
    for waiter in waiters:
        waiter.join()
    after = token_client(alice).get(status_path(execution, "0.1"))

    assert refused.status_code == 429
    assert refused["Retry-After"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "long_poll_limit"
    assert "you already have 2 long polls" in error["message"]
    assert plain_poll.status_code == 200  # a poll without wait is never refused
    assert after.status_code == 200  # the slots were given back


def test_long_polls_past_the_process_bound_are_refused_for_every_user(start_workflow, alice, bob, settings):
    settings.LONG_POLL_MAX_PER_PROCESS = 1
    execution = start_workflow(TWO_NODES)
    waiter = threading.Thread(target=token_client(alice).get, args=(status_path(execution, "2"),))
    waiter.start()
    time.sleep(0.5)

    refused = token_client(bob).get(f"/api/v1/workflow/{execution.id}?wait=2")
    waiter.join()

    assert refused.status_code == 429
    assert "this API process already holds 1 long polls" in refused.json()["error"]["message"]
