"""POST /api/v1/workflow/run: submit and trigger in one request (or start a stored workflow), and
with `?wait=` answer with the final status when the execution ends in time."""

import uuid

import pytest

from tests.workflows.api_driver import assert_error, node, published_tasks, status_of, workflow
from workflows.models import Execution, Workflow

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing", "both_engine_paths"),
    pytest.mark.embedded,
]

TWO_STEPS = workflow(node("fetch"), node("save", "output", deps=("fetch",)), name="two steps")
# Its only node is skipped at trigger when `go` is false: the execution ends in the request.
SKIPPABLE = workflow(node("maybe", condition="{{ params.go }} == true"), name="skippable")


@pytest.fixture
def run(alice_client, django_capture_on_commit_callbacks):
    def run(body: object, query: str = "", **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return alice_client.post(f"/api/v1/workflow/run{query}", body, format="json", headers=headers)

    return run


def test_run_submits_and_triggers_at_once(run, alice_client, streams):
    response = run({"workflow": TWO_STEPS, "params": {"region": "eu"}})

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"execution_id", "workflow_id", "status", "message"}
    assert body["status"] == "RUNNING"
    status = status_of(alice_client, body["execution_id"])
    assert status["workflow_id"] == body["workflow_id"]
    assert status["params"] == {"region": "eu"}
    assert status["node_statuses"] == {"fetch": "QUEUED", "save": "PENDING"}
    assert [task.node_id for task in published_tasks(streams)] == ["fetch"]


def test_run_starts_a_stored_workflow_by_id(run, alice_client):
    first = run({"workflow": TWO_STEPS}).json()

    again = run({"workflow_id": first["workflow_id"], "params": {"n": 2}})

    assert again.status_code == 202, again.content
    assert again.json()["workflow_id"] == first["workflow_id"]
    assert again.json()["execution_id"] != first["execution_id"]
    assert Workflow.objects.count() == 1
    assert status_of(alice_client, again.json()["execution_id"])["params"] == {"n": 2}


def test_run_with_wait_answers_the_final_status_when_it_ended(run):
    response = run({"workflow": SKIPPABLE, "params": {"go": False}}, "?wait=5")

    assert response.status_code == 200, response.content
    status = response.json()
    assert status["status"] == "COMPLETED"
    assert status["node_statuses"] == {"maybe": "SKIPPED"}


def test_run_with_wait_answers_202_when_it_has_not_ended_by_then(run):
    response = run({"workflow": TWO_STEPS}, "?wait=0.2")

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "RUNNING"


def test_a_retried_run_with_the_same_key_starts_nothing_twice(run):
    first = run({"workflow": TWO_STEPS}, **{"Idempotency-Key": "run-1"})
    again = run({"workflow": TWO_STEPS}, **{"Idempotency-Key": "run-1"})

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Execution.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "invalid_payload"),
        ({}, "invalid_payload"),
        ({"params": {}}, "invalid_payload"),
        ({"workflow": TWO_STEPS, "workflow_id": str(uuid.uuid4())}, "invalid_payload"),
        ({"workflow": TWO_STEPS, "extra": 1}, "invalid_payload"),
        ({"workflow_id": "not-a-uuid"}, "invalid_payload"),
        ({"workflow": TWO_STEPS, "params": [1]}, "invalid_params"),
        ({"workflow": workflow(node("a", deps=("a",)))}, "cycle"),
        ({"workflow": {"name": "no dag"}}, "invalid_payload"),
    ],
    ids=["list", "empty", "neither", "both", "unknown-field", "bad-id", "params-list", "cycle", "no-dag"],
)
def test_a_refused_run_says_why_and_leaves_nothing_behind(run, body, code):
    assert_error(run(body), 400, code)
    assert not Workflow.objects.exists()
    assert not Execution.objects.exists()


def test_params_the_trigger_refuses_leave_no_workflow_behind(run, settings):
    settings.PARAMS_MAX_BYTES = 10

    assert_error(run({"workflow": TWO_STEPS, "params": {"text": "x" * 100}}), 400, "params_too_large")
    assert not Workflow.objects.exists()


def test_another_users_workflow_cannot_be_run_by_id(run, bob_client):
    bobs = bob_client.post("/api/v1/workflow", TWO_STEPS, format="json").json()

    assert_error(run({"workflow_id": bobs["workflow_id"]}), 404, "not_found")
    assert Execution.objects.count() == 1  # bob's own


@pytest.mark.parametrize("wait", ["-1", "nan", "31", "soon", ""])
def test_wait_out_of_bounds_is_refused_before_anything_starts(run, wait):
    assert_error(run({"workflow": TWO_STEPS}, f"?wait={wait}"), 400, "invalid_wait")
    assert not Execution.objects.exists()
