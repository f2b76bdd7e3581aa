"""POST /api/v1/workflow/trigger/{id}: starts an execution with its params, publishes its roots
after commit, and refuses what cannot start."""

import json
import uuid
from datetime import datetime

import pytest

from tests.workflows.api_driver import (
    assert_error,
    node,
    published_tasks,
    reference_payload,
    status_of,
    submit,
    workflow,
)
from workflows.models import TaskRun

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing", "both_engine_paths"),
    pytest.mark.embedded,
]


def test_trigger_starts_execution_and_publishes_roots_after_commit(
    alice_client, streams, django_capture_on_commit_callbacks
):
    payload = workflow(node("left"), node("right"), node("join", "output", deps=("left", "right")))
    execution_id = submit(alice_client, payload)["execution_id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/api/v1/workflow/trigger/{execution_id}")
        assert streams.client.xlen(streams.tasks) == 0, "published before the transaction committed"

    assert response.status_code == 202, response.content
    assert response.json()["execution_id"] == execution_id
    assert response.json()["status"] == "RUNNING"
    status = status_of(alice_client, execution_id)
    assert status["status"] == "RUNNING"
    assert status["node_statuses"] == {"left": "QUEUED", "right": "QUEUED", "join": "PENDING"}
    assert status["progress"]["queued"] == 2
    assert status["progress"]["pending"] == 1
    assert status["started_at"] is not None
    assert datetime.fromisoformat(status["started_at"]) >= datetime.fromisoformat(status["created_at"])
    tasks = published_tasks(streams)
    assert sorted(task.node_id for task in tasks) == ["left", "right"]
    runs = dict(TaskRun.objects.filter(execution_id=execution_id).values_list("node_id", "id"))
    for task in tasks:
        assert task.execution_id == execution_id
        assert task.task_id == runs[task.node_id]
        assert task.handler == "input"
        assert task.attempt == 1


def test_trigger_saves_params_and_resolves_them_in_root_templates(alice_client, start):
    payload = workflow(
        node("root", config={"x": "{{ params.x }}", "greeting": "hello {{ params.who }}", "fixed": 1}),
        node("child", deps=("root",)),
    )

    execution_id, tasks = start(payload, params={"x": [1, 2], "who": "alice"})

    assert list(tasks) == ["root"]
    assert tasks["root"].config == {"x": [1, 2], "greeting": "hello alice", "fixed": 1}
    assert tasks["root"].params == {"x": [1, 2], "who": "alice"}
    assert status_of(alice_client, execution_id)["params"] == {"x": [1, 2], "who": "alice"}
    runs = alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]
    assert runs[0]["node_id"] == "root"
    assert runs[0]["config"] == {"x": [1, 2], "greeting": "hello alice", "fixed": 1}


def test_trigger_without_body_runs_with_empty_params(alice_client, trigger, streams):
    execution_id = submit(alice_client, workflow(node("only", config={"x": "{{ params.x }}"})))[
        "execution_id"
    ]

    response = trigger(alice_client, execution_id)

    assert response.status_code == 202, response.content
    assert status_of(alice_client, execution_id)["params"] == {}
    # An unresolved reference stays as written (the reference payloads rely on it).
    assert published_tasks(streams)[0].config == {"x": "{{ params.x }}"}


def test_trigger_skips_root_whose_condition_is_false_and_releases_its_children(alice_client, start):
    payload = workflow(
        node("gated", condition="{{ params.enabled }} == true"),
        node("always"),
        node("after_gated", deps=("gated",)),
    )

    execution_id, tasks = start(payload, params={"enabled": False})

    assert sorted(tasks) == ["after_gated", "always"]
    status = status_of(alice_client, execution_id)
    assert status["status"] == "RUNNING"
    assert status["node_statuses"] == {"gated": "SKIPPED", "always": "QUEUED", "after_gated": "QUEUED"}
    assert status["progress"]["skipped"] == 1


def test_trigger_with_every_node_skipped_completes_at_once(alice_client, start):
    payload = workflow(node("gated", condition="{{ params.go }}"))

    execution_id, tasks = start(payload, params={"go": False})

    assert tasks == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert status["node_statuses"] == {"gated": "SKIPPED"}
    assert status["finished_at"] is not None


def test_trigger_sets_the_workflow_deadline(alice_client, start):
    execution_id, tasks = start(reference_payload("timeout_test"))

    status = status_of(alice_client, execution_id)
    started = datetime.fromisoformat(status["started_at"])
    deadline = datetime.fromisoformat(status["deadline"])
    assert (deadline - started).total_seconds() == pytest.approx(2, abs=0.01)
    assert tasks["slow_task"].deadline == pytest.approx(deadline.timestamp(), abs=0.01)


def test_trigger_twice_is_a_conflict_and_publishes_nothing_more(alice_client, trigger, streams):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    assert trigger(alice_client, execution_id).status_code == 202

    response = trigger(alice_client, execution_id, {"params": {"again": True}})

    assert_error(response, 409)
    assert [task.node_id for task in published_tasks(streams)] == ["start"]
    assert status_of(alice_client, execution_id)["params"] == {}


def test_trigger_cancelled_execution_is_a_conflict(alice_client, trigger, cancel, streams):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    assert cancel(execution_id).status_code == 200

    assert_error(trigger(alice_client, execution_id), 409)
    assert status_of(alice_client, execution_id)["status"] == "CANCELLED"
    assert streams.client.xlen(streams.tasks) == 0


@pytest.mark.parametrize("params", [[1, 2], "x=1", 5, True], ids=["list", "string", "number", "bool"])
def test_trigger_rejects_params_that_are_not_an_object(alice_client, trigger, streams, params):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]

    response = trigger(alice_client, execution_id, {"params": params})

    error = assert_error(response, 400, "invalid_request")
    assert "params" in error["message"]
    assert status_of(alice_client, execution_id)["status"] == "PENDING"
    assert streams.client.xlen(streams.tasks) == 0


def test_trigger_rejects_a_body_that_is_not_an_object(alice_client, trigger):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]

    assert_error(trigger(alice_client, execution_id, [{"params": {}}]), 400)
    assert status_of(alice_client, execution_id)["status"] == "PENDING"


UNSTORABLE_TRIGGERS = [
    pytest.param(json.dumps({"params": {"note": "nul\u0000byte"}}).encode(), id="nul_in_params"),
    pytest.param(
        b'{"params": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        id="json_nested_too_deep",
    ),
]


@pytest.mark.parametrize("body", UNSTORABLE_TRIGGERS)
def test_trigger_answers_unstorable_params_with_400_not_500(
    alice_client, django_capture_on_commit_callbacks, body
):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    alice_client.raise_request_exception = False

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            f"/api/v1/workflow/trigger/{execution_id}",
            body,
            content_type="application/json",
        )

    assert_error(response, 400)
    assert status_of(alice_client, execution_id)["status"] == "PENDING"


def test_accepted_workflow_timeout_never_breaks_trigger(alice_client, trigger):
    """A timeout the API accepts must give a deadline it can store; too large a one is a 400 at submit."""
    alice_client.raise_request_exception = False

    submitted = alice_client.post(
        "/api/v1/workflow", workflow(node("a"), timeout_seconds=1e12), format="json"
    )

    if submitted.status_code == 201:
        assert trigger(alice_client, submitted.json()["execution_id"]).status_code == 202
    else:
        assert "timeout_seconds" in assert_error(submitted, 400)["message"]


def test_trigger_fails_execution_when_a_strict_root_template_cannot_resolve(alice_client, start):
    payload = workflow(
        node("needs_x", config={"x": "{{ params.x }}"}),
        node("after", deps=("needs_x",)),
        strict_templates=True,
    )

    execution_id, tasks = start(payload, params={"y": 1})

    assert tasks == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "FAILED"
    assert status["node_statuses"] == {"needs_x": "FAILED", "after": "CANCELLED"}
    assert status["error"]["node_id"] == "needs_x"
    assert "params.x" in status["error"]["message"]


@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_trigger_unknown_execution_is_404(alice_client, trigger, execution_id):
    assert_error(trigger(alice_client, execution_id), 404, "not_found")
