"""DELETE /api/v1/workflow/{id}: cancels the open tasks and flags the execution for workers."""

import uuid

import pytest

from tests.workflows.api_driver import (
    apply,
    assert_error,
    node,
    reference_payload,
    run_handler,
    status_of,
    submit,
    workflow,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing"),
    pytest.mark.embedded,
]


def test_delete_cancels_open_tasks_and_flags_the_execution_for_workers(alice_client, start, cancel, streams):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    apply(run_handler(tasks["start"]))

    response = cancel(execution_id)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    status = status_of(alice_client, execution_id)
    assert status["status"] == "CANCELLED"
    assert status["node_statuses"] == {"start": "COMPLETED", "process": "CANCELLED", "finish": "CANCELLED"}
    assert status["finished_at"] is not None
    assert streams.cancelled_executions([execution_id]) == {execution_id}
    assert sorted(alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"]) == ["start"]


def test_delete_pending_execution_cancels_it(alice_client, cancel, streams):
    execution_id = submit(alice_client, reference_payload("parallel_fanout"))["execution_id"]

    assert cancel(execution_id).status_code == 200

    status = status_of(alice_client, execution_id)
    assert status["status"] == "CANCELLED"
    assert set(status["node_statuses"].values()) == {"CANCELLED"}
    assert streams.cancelled_executions([execution_id]) == {execution_id}


def test_second_delete_is_a_conflict(alice_client, cancel):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    assert cancel(execution_id).status_code == 200

    assert_error(cancel(execution_id), 409)


def test_delete_finished_execution_is_a_conflict(alice_client, start, cancel):
    execution_id, _ = start(workflow(node("gated", condition="false")))
    assert status_of(alice_client, execution_id)["status"] == "COMPLETED"

    assert_error(cancel(execution_id), 409)
    assert status_of(alice_client, execution_id)["status"] == "COMPLETED"


@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_delete_unknown_execution_is_404(cancel, execution_id):
    assert_error(cancel(execution_id), 404, "not_found")
