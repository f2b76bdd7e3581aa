"""/api/v1/admin/dlq: tasks that failed for good become dead letters that operators list, filter,
retry and discard."""

import uuid

import pytest
from rest_framework.test import APIClient

from tests.workflows.api_driver import (
    apply,
    assert_error,
    node,
    published_tasks,
    run_handler,
    status_of,
    workflow,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing"),
    pytest.mark.embedded,
]


def only_dead_letter(client: APIClient) -> dict:
    response = client.get("/api/v1/admin/dlq")
    assert response.status_code == 200, response.content
    [letter] = response.json()["results"]
    return letter


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "/{letter}"), ("post", "/{letter}/retry"), ("delete", "/{letter}")],
)
def test_dead_letters_are_for_staff_only(alice_client, operator_client, failed_execution, method, suffix):
    letter = only_dead_letter(operator_client)
    url = "/api/v1/admin/dlq" + suffix.format(letter=letter["id"])

    assert_error(getattr(APIClient(), method)(url), 401)
    assert_error(getattr(alice_client, method)(url), 403)
    assert only_dead_letter(operator_client)["status"] == "OPEN"


def test_failed_task_is_listed_as_open_dead_letter(operator_client, failed_execution):
    execution_id, _ = failed_execution

    letter = only_dead_letter(operator_client)

    assert letter["execution_id"] == execution_id
    assert letter["node_id"] == "process"
    assert letter["handler"] == "call_external_service"
    assert letter["config"] == {"url": "https://api.example.com/process"}
    assert letter["message"] == "upstream said no"
    assert letter["status"] == "OPEN"
    detail = operator_client.get(f"/api/v1/admin/dlq/{letter['id']}")
    assert detail.status_code == 200
    assert detail.json() == letter


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({"status": "open"}, 1),
        ({"status": "DISCARDED"}, 0),
        ({"handler": "call_external_service"}, 1),
        ({"handler": "call_llm"}, 0),
        ({"execution": "{execution}"}, 1),
        ({"execution": str(uuid.uuid4())}, 0),
    ],
)
def test_dead_letters_filter(operator_client, failed_execution, query, count):
    execution_id, _ = failed_execution
    query = {key: value.format(execution=execution_id) for key, value in query.items()}

    assert operator_client.get("/api/v1/admin/dlq", query).json()["count"] == count


def test_dead_letters_reject_unknown_status_filter(operator_client):
    assert_error(operator_client.get("/api/v1/admin/dlq", {"status": "lost"}), 400)


def test_retrying_dead_letter_resumes_the_execution(
    alice_client, operator_client, failed_execution, streams, django_capture_on_commit_callbacks
):
    execution_id, tasks = failed_execution
    letter = only_dead_letter(operator_client)
    published_before = len(published_tasks(streams))

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            f"/api/v1/admin/dlq/{letter['id']}/retry", {"note": "upstream fixed"}, format="json"
        )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "RETRIED"
    assert response.json()["resolved_by"] == "olga"
    assert response.json()["note"] == "upstream fixed"
    status = status_of(alice_client, execution_id)
    assert status["status"] == "RUNNING"
    assert status["error"] is None
    assert status["node_statuses"] == {"start": "COMPLETED", "process": "QUEUED", "finish": "PENDING"}
    [requeued] = published_tasks(streams)[published_before:]
    assert requeued.node_id == "process"
    assert requeued.attempt == tasks["process"].attempt + 1

    finish = apply(run_handler(requeued))["finish"]
    apply(run_handler(finish))
    assert status_of(alice_client, execution_id)["status"] == "COMPLETED"
    assert_error(operator_client.post(f"/api/v1/admin/dlq/{letter['id']}/retry"), 409)


def test_discarding_dead_letter_closes_it_and_leaves_the_execution_failed(
    alice_client, operator_client, failed_execution
):
    execution_id, _ = failed_execution
    letter = only_dead_letter(operator_client)

    response = operator_client.delete(f"/api/v1/admin/dlq/{letter['id']}")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "DISCARDED"
    assert response.json()["resolved_by"] == "olga"
    assert status_of(alice_client, execution_id)["status"] == "FAILED"
    assert_error(operator_client.delete(f"/api/v1/admin/dlq/{letter['id']}"), 409)
    assert_error(operator_client.post(f"/api/v1/admin/dlq/{letter['id']}/retry"), 409)


@pytest.mark.parametrize("letter_id", ["999999", "not-a-number"])
def test_unknown_dead_letter_is_404(operator_client, letter_id):
    assert_error(operator_client.get(f"/api/v1/admin/dlq/{letter_id}"), 404)
    assert_error(operator_client.post(f"/api/v1/admin/dlq/{letter_id}/retry"), 404)
    assert_error(operator_client.delete(f"/api/v1/admin/dlq/{letter_id}"), 404)


def test_a_strict_template_failure_is_a_dead_letter_too(operator_client, alice_client, start, streams):
    payload = workflow(node("needs_x", config={"x": "{{ params.x }}"}), strict_templates=True)

    execution_id, _ = start(payload, params={})

    [letter] = operator_client.get("/api/v1/admin/dlq", {"execution": execution_id}).json()["results"]
    assert (letter["node_id"], letter["category"], letter["code"]) == (
        "needs_x",
        "validation",
        "invalid_template",
    )
    assert streams.client.xlen(streams.dlq) == 1
    discarded = operator_client.delete(f"/api/v1/admin/dlq/{letter['id']}")
    assert discarded.json()["status"] == "DISCARDED"
