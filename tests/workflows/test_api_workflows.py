"""/api/v1/workflows: stored workflows, their definitions, and new executions of them."""

import uuid

import pytest

from tests.workflows.api_driver import (
    apply,
    assert_error,
    published_tasks,
    reference_payload,
    run_handler,
    status_of,
    submit,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing"),
    pytest.mark.embedded,
]


def test_workflows_list_and_detail(alice_client, bob_client):
    linear = submit(alice_client, reference_payload("linear_workflow"))
    timed = submit(alice_client, reference_payload("timeout_test"))
    submit(bob_client, reference_payload("complex_dag"))

    listed = alice_client.get("/api/v1/workflows").json()
    detail = alice_client.get(f"/api/v1/workflows/{timed['workflow_id']}").json()

    assert [w["id"] for w in listed["results"]] == [timed["workflow_id"], linear["workflow_id"]]
    assert [w["node_count"] for w in listed["results"]] == [1, 3]
    assert detail["name"] == "Timeout Test"
    assert detail["timeout_seconds"] == 2
    assert [n["id"] for n in detail["dag"]["nodes"]] == ["slow_task"]
    assert detail["dag"]["nodes"][0]["config"] == {"url": "https://slow-api.example.com/wait"}
    assert len(detail["content_hash"]) == 64


@pytest.mark.parametrize("workflow_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_workflow_detail_of_unknown_workflow_is_404(alice_client, workflow_id):
    assert_error(alice_client.get(f"/api/v1/workflows/{workflow_id}"), 404, "not_found")
    assert_error(alice_client.post(f"/api/v1/workflows/{workflow_id}/executions"), 404, "not_found")


def test_new_execution_of_a_stored_workflow_runs_independently(alice_client, trigger, cancel, streams):
    first = submit(alice_client, reference_payload("linear_workflow"))

    response = alice_client.post(f"/api/v1/workflows/{first['workflow_id']}/executions")

    assert response.status_code == 201, response.content
    second = response.json()
    assert second["workflow_id"] == first["workflow_id"]
    assert second["execution_id"] != first["execution_id"]
    assert status_of(alice_client, second["execution_id"])["node_statuses"] == {
        "start": "PENDING",
        "process": "PENDING",
        "finish": "PENDING",
    }

    assert trigger(alice_client, second["execution_id"], {"params": {"run": 2}}).status_code == 202
    assert status_of(alice_client, first["execution_id"])["status"] == "PENDING"
    assert cancel(first["execution_id"]).status_code == 200
    assert status_of(alice_client, second["execution_id"])["status"] == "RUNNING"
    [task] = published_tasks(streams)
    assert task.execution_id == second["execution_id"]
    assert task.params == {"run": 2}
    assert list(apply(run_handler(task))) == ["process"]
    assert status_of(alice_client, first["execution_id"])["node_statuses"]["start"] == "CANCELLED"
