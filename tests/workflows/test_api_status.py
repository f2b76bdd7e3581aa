"""GET /api/v1/workflow/{id} and .../results: progress, timestamps and outputs."""

import uuid

import psycopg
import pytest
from django.db import connection

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


def test_status_reports_progress_and_timestamps(alice_client, start):
    execution_id, tasks = start(reference_payload("complex_dag"))
    apply(run_handler(tasks["input"]))

    status = status_of(alice_client, execution_id)

    assert status["execution_id"] == execution_id
    assert status["workflow_name"] == "Complex DAG with Multiple Dependencies"
    assert status["status"] == "RUNNING"
    assert status["progress"] == {
        "total": 9,
        "completed": 1,
        "skipped": 0,
        "failed": 0,
        "cancelled": 0,
        "queued": 3,
        "running": 0,
        "pending": 5,
    }
    assert len(status["node_statuses"]) == 9
    assert status["created_at"] is not None
    assert status["started_at"] is not None
    assert status["finished_at"] is None


def test_results_hold_outputs_of_completed_nodes_only(alice_client, start):
    execution_id, tasks = start(reference_payload("llm_service"), params={"lang": "en"})
    ready = apply(run_handler(tasks["input"]))
    apply(run_handler(ready["summarize"]))

    response = alice_client.get(f"/api/v1/workflow/{execution_id}/results")

    assert response.status_code == 200
    body = response.json()
    assert body["execution_id"] == execution_id
    assert body["status"] == "RUNNING"
    assert sorted(body["outputs"]) == ["input", "summarize"]
    assert body["outputs"]["input"] == {
        "document": "This is a sample document about machine learning and artificial intelligence.",
        "lang": "en",
    }
    assert "machine learning" in body["outputs"]["summarize"]["response"]


@pytest.mark.parametrize("suffix", ["", "/results"])
@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_status_and_results_of_unknown_execution_are_404(alice_client, suffix, execution_id):
    assert_error(alice_client.get(f"/api/v1/workflow/{execution_id}{suffix}"), 404, "not_found")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_status_keeps_answering_after_a_migration_changes_a_column_type(alice_client):
    """Rolling deploys migrate while the API serves. The hot statements are prepared per
    connection, and the server refuses a prepared statement whose result type changed: the
    connection must prepare it again, not fail that request on every later poll."""
    execution_id = submit(alice_client, workflow(node("a")))["execution_id"]
    for _ in range(6):  # prepared from the 5th run on (DB_PREPARE_THRESHOLD)
        assert alice_client.get(f"/api/v1/workflow/{execution_id}").status_code == 200
    migrate = "ALTER TABLE workflows_workflow ALTER COLUMN name TYPE varchar({})"
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as deploy:
        deploy.execute(migrate.format(201))
        try:
            responses = [alice_client.get(f"/api/v1/workflow/{execution_id}") for _ in range(2)]
        finally:
            deploy.execute(migrate.format(200))
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[-1].json()["workflow_name"] == "api test"
