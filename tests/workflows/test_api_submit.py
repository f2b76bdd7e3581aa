"""POST /api/v1/workflow: a valid workflow becomes a PENDING execution; anything else is a 400
naming the problem, and stores nothing."""

import json

import pytest

from tests import reference_payloads
from tests.workflows.api_driver import (
    assert_error,
    node,
    reference_payload,
    status_of,
    submit,
    workflow,
)
from workflows.models import Execution, TaskRun, Workflow

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing"),
    pytest.mark.embedded,
]

REFERENCE_PAYLOADS = reference_payloads.PATHS


@pytest.mark.parametrize("path", REFERENCE_PAYLOADS, ids=lambda path: path.stem)
def test_submit_reference_payload_creates_pending_execution(alice_client, alice, path):
    payload = json.loads(path.read_text())

    body = submit(alice_client, payload)

    assert set(body) == {"workflow_id", "execution_id", "message"}
    execution = Execution.objects.select_related("workflow").get(pk=body["execution_id"])
    assert str(execution.workflow_id) == body["workflow_id"]
    assert execution.workflow.name == payload["name"]
    assert execution.status == Execution.Status.PENDING
    assert execution.owner == alice
    expected = {n["id"]: (n["handler"], len(n.get("dependencies", []))) for n in payload["dag"]["nodes"]}
    runs = list(TaskRun.objects.filter(execution=execution))
    assert {run.node_id: (run.handler, run.pending_dependencies) for run in runs} == expected
    assert {run.status for run in runs} == {TaskRun.Status.PENDING}
    assert {run.attempt for run in runs} == {0}


def test_submit_runs_nothing_until_triggered(alice_client, streams):
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]

    status = status_of(alice_client, execution_id)
    assert status["status"] == "PENDING"
    assert status["node_statuses"] == {"start": "PENDING", "process": "PENDING", "finish": "PENDING"}
    assert status["progress"]["pending"] == status["progress"]["total"] == 3
    assert status["started_at"] is None
    assert status["finished_at"] is None
    assert streams.client.xlen(streams.tasks) == 0


CYCLE = workflow(
    node("entry"),
    node("alpha", deps=("entry", "gamma")),
    node("beta", deps=("alpha",)),
    node("gamma", deps=("beta",)),
    node("exit", deps=("gamma",)),
)
BAD_SUBMISSIONS = {
    # id: (body, expected error code, fragments the message must contain, node in details)
    "malformed_json": (b'{"name": "x", "dag": {"nodes": [', "parse_error", ["JSON"], None),
    "array_body": (b'[{"name": "x"}]', "invalid_payload", ["object"], None),
    "string_body": (b'"a workflow"', "invalid_payload", ["object"], None),
    "null_body": (b"null", "invalid_payload", ["object"], None),
    "missing_name": ({"dag": {"nodes": [node("a")]}}, "invalid_payload", ["name"], None),
    "blank_name": (workflow(node("a"), name="   "), "invalid_payload", ["name"], None),
    "missing_dag": ({"name": "no dag"}, "invalid_payload", ["dag"], None),
    "missing_nodes": ({"name": "no nodes", "dag": {}}, "invalid_payload", ["nodes"], None),
    "nodes_not_a_list": ({"name": "x", "dag": {"nodes": {"a": {}}}}, "invalid_payload", ["nodes"], None),
    "no_nodes": (workflow(), "invalid_dag", ["at least one node"], None),
    "unknown_top_level_field": (workflow(node("a"), colour="red"), "invalid_payload", ["colour"], None),
    "cycle": (CYCLE, "cycle", ["cycle", "alpha", "beta", "gamma"], None),
    "self_dependency": (workflow(node("loop", deps=("loop",))), "cycle", ["loop"], "loop"),
    "unknown_handler": (
        workflow(node("a"), node("beam", "teleport", deps=("a",))),
        "unknown_handler",
        ["teleport", "beam"],
        "beam",
    ),
    "duplicate_ids": (workflow(node("twin"), node("twin")), "invalid_dag", ["duplicate", "twin"], "twin"),
    "unknown_dependency": (
        workflow(node("a", deps=("ghost",))),
        "invalid_dag",
        ["ghost"],
        "a",
    ),
    "template_from_sibling": (
        workflow(node("left"), node("right", config={"x": "{{ left.value }}"})),
        "invalid_template",
        ["right", "left", "ancestor"],
        "right",
    ),
    "template_from_descendant": (
        workflow(node("up", config={"x": "{{ down.value }}"}), node("down", deps=("up",))),
        "invalid_template",
        ["up", "down"],
        "up",
    ),
    "template_from_unknown_node": (
        workflow(node("a", config={"x": "{{ nowhere.value }}"})),
        "invalid_template",
        ["nowhere"],
        "a",
    ),
    "condition_from_sibling": (
        workflow(node("left"), node("right", condition="{{ left.ok }} == true")),
        "invalid_template",
        ["right", "left"],
        "right",
    ),
    "condition_syntax": (workflow(node("a", condition="1 ==")), "invalid_condition", ["'a'"], "a"),
    "unknown_node_field": (workflow(node("a", colour="red")), "invalid_dag", ["colour"], "a"),
    "node_id_not_a_string": (workflow({"id": 7, "handler": "input"}), "invalid_dag", ["id"], None),
    "dependencies_not_a_list": (
        workflow(node("a"), {"id": "b", "handler": "input", "dependencies": "a"}),
        "invalid_dag",
        ["dependencies"],
        "b",
    ),
    "negative_timeout": (workflow(node("a"), timeout_seconds=-1), None, ["timeout_seconds"], None),
}


@pytest.mark.parametrize("case", list(BAD_SUBMISSIONS))
def test_submit_rejects_invalid_workflow_with_400_naming_the_problem(alice_client, case):
    body, code, fragments, node_id = BAD_SUBMISSIONS[case]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    alice_client.raise_request_exception = False

    response = alice_client.post("/api/v1/workflow", raw, content_type="application/json")

    error = assert_error(response, 400, code)
    for fragment in fragments:
        assert fragment in error["message"]
    if node_id is not None:
        assert error["details"] == {"node": node_id}
    assert not Workflow.objects.exists()
    assert not Execution.objects.exists()


def test_submit_cycle_message_names_only_the_nodes_on_the_cycle(alice_client):
    response = alice_client.post("/api/v1/workflow", CYCLE, format="json")

    message = assert_error(response, 400, "cycle")["message"]
    assert "entry" not in message
    assert "exit" not in message


def test_submit_rejects_more_nodes_than_the_limit(alice_client, settings):
    settings.DAG_MAX_NODES = 3
    chain = [node("n0"), *(node(f"n{i}", deps=(f"n{i - 1}",)) for i in range(1, 4))]

    response = alice_client.post("/api/v1/workflow", workflow(*chain), format="json")

    error = assert_error(response, 400, "too_large")
    assert "3" in error["message"]
    assert "4" in error["message"]
    assert submit(alice_client, workflow(*chain[:3]))["execution_id"]


def test_submit_rejects_oversized_config_naming_the_node(alice_client, settings):
    settings.DAG_MAX_CONFIG_BYTES = 100

    response = alice_client.post(
        "/api/v1/workflow", workflow(node("small"), node("bulky", config={"blob": "x" * 200})), format="json"
    )

    error = assert_error(response, 400, "too_large")
    assert "bulky" in error["message"]
    assert error["details"] == {"node": "bulky"}
    assert not Workflow.objects.exists()


UNSTORABLE_SUBMISSIONS = [
    # Valid JSON that Python's parser or PostgreSQL cannot take: still a 400, never a 500.
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="json_nested_too_deep"),
    pytest.param(
        b'{"name": "deep", "dag": {"nodes": [{"id": "a", "handler": "input", "config": '
        + b'{"k": ' * 950
        + b"1"
        + b"}" * 950
        + b"}]}}",
        id="config_nested_too_deep",
    ),
    pytest.param(json.dumps(workflow(node("a"), name="nul\u0000name")).encode(), id="nul_in_name"),
    pytest.param(
        json.dumps(workflow(node("a", config={"text": "a\u0000b"}))).encode(),
        id="nul_in_config",
    ),
    pytest.param(
        b'{"name": "half \\ud800 pair", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
        id="lone_surrogate_in_name",
    ),
]


@pytest.mark.parametrize("body", UNSTORABLE_SUBMISSIONS)
def test_submit_answers_unstorable_input_with_400_not_500(alice_client, body):
    alice_client.raise_request_exception = False

    response = alice_client.post("/api/v1/workflow", body, content_type="application/json")

    assert_error(response, 400)
    assert not Workflow.objects.exists()


# --- rate limits ---------------------------------------------------------------------------------


def test_submit_rejects_a_malformed_rate_limit(alice_client):
    response = alice_client.post(
        "/api/v1/workflow", workflow(node("a", config={"rate_limit": "lots"})), format="json"
    )

    error = assert_error(response, 400)
    assert "rate limit" in error["message"]
    assert error["details"] == {"node": "a"}


def test_a_malformed_rate_limit_setting_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.RATE_LIMITS = {"call_llm": "lots"}

    with pytest.raises(SystemCheckError, match=r"workflows\.E001"):
        call_command("check")
