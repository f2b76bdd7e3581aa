"""A node whose handler is running shows RUNNING, with its start time and worker, although only
the orchestrator writes run state: status reads overlay the worker's claim in Redis."""

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from workflows import selectors
from workflows.models import TaskRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

TWO_NODES = {
    "name": "two nodes",
    "dag": {
        "nodes": [
            {"id": "start", "handler": "input"},
            {"id": "finish", "handler": "output", "dependencies": ["start"]},
        ]
    },
}


def test_a_claimed_task_is_running_in_the_status_with_start_time_and_worker(
    start_workflow, alice_client, worker
):
    execution = start_workflow(TWO_NODES)
    before = alice_client.get(f"/api/v1/workflow/{execution.id}").json()

    worker.take(consumer="host-a:4242")
    during = alice_client.get(f"/api/v1/workflow/{execution.id}").json()

    assert before["node_statuses"]["start"] == "QUEUED"
    assert before["progress"]["running"] == 0
    assert before["running"] == {}
    assert during["node_statuses"] == {"start": "RUNNING", "finish": "PENDING"}
    assert during["progress"]["running"] == 1
    assert during["progress"]["queued"] == 0
    assert during["running"]["start"]["worker"] == "host-a:4242"
    started = datetime.fromisoformat(during["running"]["start"]["started_at"])
    assert abs(started - timezone.now()) < timedelta(seconds=5)
    # Nothing was written: PostgreSQL still says QUEUED until the orchestrator records the outcome.
    assert TaskRun.objects.get(execution=execution, node_id="start").status == TaskRun.Status.QUEUED


def test_the_running_state_ends_with_the_completion(start_workflow, alice_client, worker, orchestrate):
    execution = start_workflow(TWO_NODES)
    entry = worker.take()["start"]
    worker.succeed(entry)
    orchestrate()

    status = alice_client.get(f"/api/v1/workflow/{execution.id}").json()

    assert status["node_statuses"] == {"start": "COMPLETED", "finish": "QUEUED"}
    assert status["running"] == {}


def test_live_task_runs_show_the_running_task_for_the_dashboard(start_workflow, worker):
    execution = start_workflow(TWO_NODES)
    worker.take(consumer="host-b:7")

    runs = {run.node_id: run for run in selectors.live_task_runs(execution)}

    assert runs["start"].status == TaskRun.Status.RUNNING
    assert runs["start"].worker == "host-b:7"
    assert runs["start"].started_at is not None
    assert runs["finish"].status == TaskRun.Status.PENDING


def test_a_claim_that_expired_with_its_dead_worker_is_queued_again(
    start_workflow, alice_client, worker, streams
):
    execution = start_workflow(TWO_NODES)
    entry = worker.take()["start"]
    streams.client.delete(streams.claim_key(entry.message.task_id, entry.message.attempt))

    status = alice_client.get(f"/api/v1/workflow/{execution.id}").json()

    assert status["node_statuses"]["start"] == "QUEUED"


def test_the_task_list_shows_the_running_task_with_its_worker(start_workflow, alice_client, worker):
    execution = start_workflow(TWO_NODES)
    worker.take(consumer="host-c:9")

    tasks = alice_client.get(f"/api/v1/executions/{execution.id}/tasks").json()["results"]

    start = next(task for task in tasks if task["node_id"] == "start")
    assert (start["status"], start["worker"]) == ("RUNNING", "host-c:9")
    assert start["started_at"] is not None


def test_the_admin_shows_the_running_task_in_the_execution_page(start_workflow, worker, admin_client):
    execution = start_workflow(TWO_NODES)
    worker.take(consumer="host-d:11")

    page = admin_client.get(f"/admin/workflows/execution/{execution.id}/change/").content.decode()

    statuses = re.findall(r'<td class="field-status">\s*<p>(\w+)</p>', page)
    workers = re.findall(r'<td class="field-worker">\s*<p>([^<]*)</p>', page)
    assert statuses == ["Running", "Pending"]
    assert workers[0] == "host-d:11"
