"""/api/v1/executions: the list with its filters, one execution, and its task runs."""

import uuid

import pytest

from tests.workflows.api_driver import (
    apply,
    assert_error,
    node,
    published_tasks,
    reference_payload,
    run_handler,
    submit,
    transient_failure,
    workflow,
)
from workflows.models import TaskRun

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing"),
    pytest.mark.embedded,
]


def test_executions_list_is_newest_first_and_filters_by_status(alice_client, bob_client, trigger):
    first = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    second = submit(alice_client, reference_payload("parallel_fanout"))["execution_id"]
    submit(bob_client, reference_payload("linear_workflow"))
    assert trigger(alice_client, first).status_code == 202

    listed = alice_client.get("/api/v1/executions").json()
    running = alice_client.get("/api/v1/executions", {"status": "RUNNING"}).json()
    pending = alice_client.get("/api/v1/executions", {"status": "pending"}).json()

    assert listed["count"] == 2
    assert [e["execution_id"] for e in listed["results"]] == [second, first]
    assert [e["execution_id"] for e in running["results"]] == [first]
    assert [e["execution_id"] for e in pending["results"]] == [second]
    assert alice_client.get("/api/v1/executions", {"status": "CANCELLED"}).json()["count"] == 0


def test_executions_list_rejects_unknown_status(alice_client):
    error = assert_error(alice_client.get("/api/v1/executions", {"status": "sleeping"}), 400)

    assert "sleeping" in error["message"]


def test_executions_list_filters_by_workflow(alice_client):
    linear = submit(alice_client, reference_payload("linear_workflow"))
    submit(alice_client, reference_payload("parallel_fanout"))
    again = alice_client.post(f"/api/v1/workflows/{linear['workflow_id']}/executions").json()

    listed = alice_client.get("/api/v1/executions", {"workflow": linear["workflow_id"]}).json()

    assert sorted(e["execution_id"] for e in listed["results"]) == sorted(
        [linear["execution_id"], again["execution_id"]]
    )
    assert {e["workflow_id"] for e in listed["results"]} == {linear["workflow_id"]}


@pytest.mark.parametrize(
    ("url", "query"),
    [("/api/v1/executions", {"workflow": "not-a-uuid"}), ("/api/v1/admin/dlq", {"execution": "not-a-uuid"})],
)
def test_lists_reject_a_malformed_id_filter_as_bad_request(operator_client, url, query):
    error = assert_error(operator_client.get(url, query), 400)

    assert "not-a-uuid" in error["message"]


def test_execution_detail(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    apply(run_handler(tasks["start"]))

    response = alice_client.get(f"/api/v1/executions/{execution_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["execution_id"] == execution_id
    assert body["workflow_name"] == "Linear Workflow (A → B → C)"
    assert body["status"] == "RUNNING"
    assert body["total_tasks"] == 3
    assert body["unfinished_tasks"] == 2
    assert body["started_at"] is not None
    assert body["finished_at"] is None


def test_execution_tasks_list_every_node_with_attempt_config_and_output(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    apply(run_handler(tasks["start"]))

    response = alice_client.get(f"/api/v1/executions/{execution_id}/tasks")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    runs = {run["node_id"]: run for run in body["results"]}
    assert [run["node_id"] for run in body["results"]] == ["start", "process", "finish"]
    assert runs["start"]["status"] == "COMPLETED"
    assert runs["start"]["output"] == {"message": "Starting linear workflow"}
    assert runs["start"]["worker"] == "test-worker"
    assert runs["start"]["finished_at"] is not None
    assert runs["process"]["status"] == "QUEUED"
    assert runs["process"]["attempt"] == 1
    assert runs["process"]["config"] == {"url": "https://api.example.com/process"}
    assert runs["process"]["queued_at"] is not None
    assert runs["finish"]["status"] == "PENDING"
    assert runs["finish"]["attempt"] == 0
    assert runs["finish"]["output"] is None


@pytest.mark.parametrize("suffix", ["", "/tasks"])
@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_execution_detail_of_unknown_execution_is_404(alice_client, suffix, execution_id):
    assert_error(alice_client.get(f"/api/v1/executions/{execution_id}{suffix}"), 404, "not_found")


def test_tasks_endpoint_lists_every_failed_attempt(alice_client, streams, django_capture_on_commit_callbacks):
    execution_id = submit(alice_client, workflow(node("flaky", retry={"max_attempts": 3})))["execution_id"]
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/api/v1/workflow/trigger/{execution_id}")
    [task] = published_tasks(streams)
    apply(transient_failure(task, "first try failed"))
    retry = TaskRun.objects.get(execution_id=execution_id, node_id="flaky")

    tasks = alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]

    assert retry.attempt == 2
    [flaky] = tasks
    assert flaky["status"] == "QUEUED"
    assert [a["attempt"] for a in flaky["failed_attempts"]] == [1]
    assert flaky["failed_attempts"][0]["error"]["message"] == "first try failed"
