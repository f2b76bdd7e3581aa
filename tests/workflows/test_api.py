"""The REST API as its clients use it: submit, trigger, watch, cancel and browse workflows.

No worker or orchestrator processes run here. A test reads the task messages the API published to
its own Redis stream, runs each handler the way a worker would, and applies the outcomes with
`engine.completions_apply` in one transaction, the way an orchestrator does.
"""

import json
import time
import uuid
from datetime import datetime

import psycopg
import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from tests import reference_payloads
from workflows import engine, runs
from workflows.handlers import TaskContext, get_handler
from workflows.messages import CompletionMessage, TaskMessage, decode_task
from workflows.models import Execution, TaskRun, Workflow

# The reference payloads live next to the repository (see DESIGN.md, "Handlers").
PAYLOADS_DIR = reference_payloads.DIRECTORY
REFERENCE_PAYLOADS = reference_payloads.PATHS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_streams(streams):
    """Every test publishes to streams of its own, never to a real deployment's."""
    return streams


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every test creates users; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- helpers ---------------------------------------------------------------------------------


def node(node_id: str, handler: str = "input", *, deps: tuple[str, ...] = (), **fields) -> dict:
    return {"id": node_id, "handler": handler, "dependencies": list(deps), **fields}


def workflow(*nodes: dict, name: str = "api test", **fields) -> dict:
    return {"name": name, "dag": {"nodes": list(nodes)}, **fields}


def reference_payload(stem: str) -> dict:
    return json.loads((PAYLOADS_DIR / f"{stem}.json").read_text())


def submit(client: APIClient, payload: dict) -> dict:
    response = client.post("/api/v1/workflow", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def status_of(client: APIClient, execution_id: str) -> dict:
    response = client.get(f"/api/v1/workflow/{execution_id}")
    assert response.status_code == 200, response.content
    return response.json()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is `status` with the one error shape; returns the inner error object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def published_tasks(streams) -> list[TaskMessage]:
    return [decode_task(fields) for _, fields in streams.client.xrange(streams.tasks)]


def completion(
    task: TaskMessage,
    *,
    output: dict | None = None,
    error: dict | None = None,
    attempt: int | None = None,
    exhausted: bool = False,
) -> CompletionMessage:
    """What a worker reports for `task`: success with `output`, or failure with `error`."""
    now = time.time()
    return CompletionMessage(
        task_id=task.task_id,
        execution_id=task.execution_id,
        node_id=task.node_id,
        attempt=task.attempt if attempt is None else attempt,
        ok=error is None,
        output=output if error is None else None,
        error=error,
        exhausted=exhausted,
        started_at=now - 0.5,
        finished_at=now,
        worker="test-worker",
    )


def run_handler(task: TaskMessage) -> CompletionMessage:
    """Run the task's handler on its resolved config, as a worker would, and report success."""
    context = TaskContext.for_task(task)
    return completion(task, output=get_handler(task.handler).function(task.config, context))


def apply_batch(*completions: CompletionMessage) -> runs.Dispatch:
    """One orchestrator batch in one transaction; returns what it would publish after commit."""
    with transaction.atomic():
        return engine.completions_apply(list(completions))


def apply(*completions: CompletionMessage) -> dict[str, TaskMessage]:
    """One orchestrator batch; the tasks it would publish right away, by node id."""
    return {task.node_id: task for task in apply_batch(*completions).tasks}


def failure_detail(message: str, *, permanent: bool) -> dict:
    return {"code": "http_error", "category": "handler", "message": message, "permanent": permanent}


def exhausted_failure(task: TaskMessage, message: str) -> CompletionMessage:
    """A failed attempt with no retries left."""
    return completion(task, error=failure_detail(message, permanent=True), exhausted=True)


def transient_failure(task: TaskMessage, message: str) -> CompletionMessage:
    """A failed attempt the worker thinks may succeed if tried again."""
    return completion(task, error=failure_detail(message, permanent=False))


@pytest.fixture
def trigger(django_capture_on_commit_callbacks):
    """POST .../trigger and run what it scheduled for after commit, as a real commit would."""

    def trigger(client: APIClient, execution_id: str, body: object = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"/api/v1/workflow/trigger/{execution_id}", body, format="json")

    return trigger


@pytest.fixture
def start(alice_client, trigger, streams):
    """Submit and trigger as alice; returns the execution id and the published tasks by node id."""

    def start(payload: dict, params: dict | None = None) -> tuple[str, dict[str, TaskMessage]]:
        execution_id = submit(alice_client, payload)["execution_id"]
        response = trigger(alice_client, execution_id, {"params": params or {}})
        assert response.status_code == 202, response.content
        return execution_id, {task.node_id: task for task in published_tasks(streams)}

    return start


@pytest.fixture
def cancel(alice_client, django_capture_on_commit_callbacks):
    """DELETE the execution (as alice unless told) and run what it scheduled for after commit."""

    def cancel(execution_id: str, client: APIClient = alice_client):
        with django_capture_on_commit_callbacks(execute=True):
            return client.delete(f"/api/v1/workflow/{execution_id}")

    return cancel


# --- POST /api/v1/workflow -------------------------------------------------------------------


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


# --- POST /api/v1/workflow/trigger/{id} ------------------------------------------------------


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


@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_trigger_unknown_execution_is_404(alice_client, trigger, execution_id):
    assert_error(trigger(alice_client, execution_id), 404, "not_found")


# --- driving completions: children, branches, failure, fencing -------------------------------


def test_completion_releases_children_and_the_last_one_completes_the_execution(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    assert list(tasks) == ["start"]

    ready = apply(run_handler(tasks["start"]))
    assert list(ready) == ["process"]
    assert status_of(alice_client, execution_id)["node_statuses"] == {
        "start": "COMPLETED",
        "process": "QUEUED",
        "finish": "PENDING",
    }

    ready = apply(run_handler(ready["process"]))
    assert list(ready) == ["finish"]
    # `output` receives its dependencies' outputs.
    assert set(ready["finish"].upstream) == {"process"}

    assert apply(run_handler(ready["finish"])) == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert set(status["node_statuses"].values()) == {"COMPLETED"}
    assert status["progress"]["completed"] == 3
    assert status["finished_at"] is not None
    assert status["error"] is None


def test_fan_in_waits_for_every_dependency(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))

    branches = apply(run_handler(tasks["input"]))
    assert sorted(branches) == ["branch_a", "branch_b", "branch_c"]
    assert apply(run_handler(branches["branch_a"]), run_handler(branches["branch_b"])) == {}
    assert status_of(alice_client, execution_id)["node_statuses"]["aggregator"] == "PENDING"

    ready = apply(run_handler(branches["branch_c"]))

    assert list(ready) == ["aggregator"]
    assert sorted(ready["aggregator"].upstream) == ["branch_a", "branch_b", "branch_c"]


def test_templates_resolve_from_ancestor_outputs(alice_client, start):
    _, tasks = start(reference_payload("template_resolution"))

    ready = apply(run_handler(tasks["config_source"]))

    assert ready["fetch_data"].config == {
        "url": "https://api.example.com/data",
        "headers": {"Authorization": "Bearer test-key-123"},
    }


@pytest.mark.parametrize(
    ("answer", "taken", "skipped"),
    [("yes", "true_branch", "false_branch"), ("no", "false_branch", "true_branch")],
)
def test_conditional_payload_runs_exactly_one_branch(alice_client, start, answer, taken, skipped):
    execution_id, tasks = start(reference_payload("conditional_branching"), params={"data": answer})

    decision = apply(run_handler(tasks["start"]))
    assert decision["is_yes"].config["value_a"] == answer
    branches = apply(run_handler(decision["is_yes"]))

    assert list(branches) == [taken]
    assert status_of(alice_client, execution_id)["node_statuses"][skipped] == "SKIPPED"
    assert apply(run_handler(branches[taken])) == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert status["progress"]["completed"] == 3
    assert status["progress"]["skipped"] == 1
    outputs = alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"]
    assert sorted(outputs) == sorted(["start", "is_yes", taken])


def test_exhausted_failure_fails_the_execution_and_cancels_the_rest(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))
    branches = apply(run_handler(tasks["input"]))
    apply(run_handler(branches["branch_c"]))

    ready = apply(exhausted_failure(branches["branch_a"], "upstream said no"))

    assert ready == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "FAILED"
    assert status["node_statuses"] == {
        "input": "COMPLETED",
        "branch_a": "FAILED",
        "branch_b": "CANCELLED",
        "branch_c": "COMPLETED",
        "aggregator": "CANCELLED",
    }
    assert status["error"]["node_id"] == "branch_a"
    assert "upstream said no" in status["error"]["message"]
    assert status["finished_at"] is not None
    runs = {
        r["node_id"]: r
        for r in alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]
    }
    assert runs["branch_a"]["error"]["message"] == "upstream said no"

    # branch_b was already on the stream; its late success must not revive anything.
    assert apply(run_handler(branches["branch_b"])) == {}
    assert status_of(alice_client, execution_id)["node_statuses"]["branch_b"] == "CANCELLED"
    assert status_of(alice_client, execution_id)["status"] == "FAILED"


def test_failure_with_attempts_left_is_retried_later_not_failed(alice_client, start):
    payload = workflow(
        node("flaky", "call_external_service", config={"url": "https://x.test"}, retry={"max_attempts": 2})
    )
    execution_id, tasks = start(payload)

    dispatch = apply_batch(transient_failure(tasks["flaky"], "503 from upstream"))

    assert dispatch.tasks == []
    [(retry, due)] = dispatch.delayed
    assert (retry.task_id, retry.attempt) == (tasks["flaky"].task_id, 2)
    assert due > time.time()
    assert status_of(alice_client, execution_id)["status"] == "RUNNING"
    [run] = alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]
    assert (run["status"], run["attempt"]) == ("QUEUED", 2)

    # The second and last attempt fails too: now the execution fails.
    apply_batch(transient_failure(retry, "503 again"))
    status = status_of(alice_client, execution_id)
    assert status["status"] == "FAILED"
    assert "503 again" in status["error"]["message"]


def test_duplicate_completion_is_applied_once(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))
    branches = apply(run_handler(tasks["input"]))
    done_a = run_handler(branches["branch_a"])

    assert apply(done_a, done_a) == {}
    # Redelivered in a later batch: not a second finished dependency of the aggregator.
    assert apply(done_a) == {}
    # A redelivered `input` may re-publish its queued children, but as the same attempts.
    again = apply(run_handler(tasks["input"]))
    assert {(t.task_id, t.attempt) for t in again.values()} <= {
        (t.task_id, t.attempt) for t in branches.values()
    }
    assert apply(run_handler(branches["branch_b"])) == {}

    status = status_of(alice_client, execution_id)
    assert status["node_statuses"]["aggregator"] == "PENDING"
    assert status["progress"]["completed"] == 3
    assert status["progress"]["queued"] == 1
    assert list(apply(run_handler(branches["branch_c"]))) == ["aggregator"]


def test_completion_with_a_stale_attempt_is_ignored(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    current = tasks["start"].attempt

    stale = completion(tasks["start"], output={"from": "an attempt that was reclaimed"}, attempt=current - 1)
    assert apply(stale) == {}

    assert status_of(alice_client, execution_id)["node_statuses"]["start"] == "QUEUED"
    assert alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"] == {}
    assert list(apply(run_handler(tasks["start"]))) == ["process"]


def test_completion_for_a_cancelled_execution_changes_nothing(alice_client, start, cancel):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    assert cancel(execution_id).status_code == 200
    before = status_of(alice_client, execution_id)

    assert apply(run_handler(tasks["start"])) == {}

    after = status_of(alice_client, execution_id)
    assert after["status"] == "CANCELLED"
    assert after["node_statuses"] == before["node_statuses"]
    assert after["finished_at"] == before["finished_at"]
    assert alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"] == {}


# --- GET /api/v1/workflow/{id} and .../results -----------------------------------------------


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


# --- DELETE /api/v1/workflow/{id} ------------------------------------------------------------


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


# --- /api/v1/executions ----------------------------------------------------------------------


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


# --- /api/v1/workflows -----------------------------------------------------------------------


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


# --- authentication and visibility -----------------------------------------------------------

ENDPOINTS = [
    ("post", "/api/v1/workflow"),
    ("post", "/api/v1/workflow/trigger/{execution}"),
    ("get", "/api/v1/workflow/{execution}"),
    ("delete", "/api/v1/workflow/{execution}"),
    ("get", "/api/v1/workflow/{execution}/results"),
    ("get", "/api/v1/executions"),
    ("get", "/api/v1/executions/{execution}"),
    ("get", "/api/v1/executions/{execution}/tasks"),
    ("get", "/api/v1/workflows"),
    ("get", "/api/v1/workflows/{workflow}"),
    ("post", "/api/v1/workflows/{workflow}/executions"),
]
ALICE_ONLY = [(method, url) for method, url in ENDPOINTS if "{" in url]


@pytest.fixture
def alices_execution(alice_client) -> dict:
    return submit(alice_client, reference_payload("linear_workflow"))


def call(client: APIClient, method: str, template: str, submitted: dict):
    url = template.format(execution=submitted["execution_id"], workflow=submitted["workflow_id"])
    if method == "post":
        return client.post(url, {}, format="json")
    return getattr(client, method)(url)


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
@pytest.mark.parametrize("credentials", [None, "Token not-a-real-token"], ids=["none", "bad_token"])
def test_api_requires_authentication(alices_execution, method, template, credentials):
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)

    response = call(client, method, template, alices_execution)

    assert_error(response, 401)
    assert Execution.objects.get(pk=alices_execution["execution_id"]).status == "PENDING"
    assert Execution.objects.count() == 1


def test_health_is_open_and_reports_its_checks(streams):
    response = APIClient().get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ok"
    assert {"tasks", "completions"} <= set(body["checks"]["streams"])


@pytest.mark.parametrize(("method", "template"), ALICE_ONLY)
def test_other_users_cannot_see_or_touch_an_execution(
    bob_client, alices_execution, django_capture_on_commit_callbacks, streams, method, template
):
    with django_capture_on_commit_callbacks(execute=True):
        response = call(bob_client, method, template, alices_execution)

    assert_error(response, 404, "not_found")
    assert Execution.objects.get(pk=alices_execution["execution_id"]).status == "PENDING"
    assert Execution.objects.count() == 1
    assert streams.client.xlen(streams.tasks) == 0
    assert streams.cancelled_executions([alices_execution["execution_id"]]) == set()


def test_other_users_lists_leave_out_alices_work(bob_client, alices_execution):
    assert bob_client.get("/api/v1/executions").json()["count"] == 0
    assert bob_client.get("/api/v1/workflows").json()["count"] == 0
    assert (
        bob_client.get("/api/v1/executions", {"workflow": alices_execution["workflow_id"]}).json()["count"]
        == 0
    )


def test_staff_operator_sees_and_cancels_everyones_executions(
    alice_client, operator_client, alices_execution, cancel
):
    execution_id = alices_execution["execution_id"]

    assert status_of(operator_client, execution_id)["status"] == "PENDING"
    assert operator_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["count"] == 3
    listed = operator_client.get("/api/v1/executions").json()["results"]
    assert [e["execution_id"] for e in listed] == [execution_id]
    workflows = operator_client.get("/api/v1/workflows").json()["results"]
    assert [w["id"] for w in workflows] == [alices_execution["workflow_id"]]
    assert cancel(execution_id, client=operator_client).status_code == 200
    assert status_of(alice_client, execution_id)["status"] == "CANCELLED"


def test_session_authentication_works(alice, alices_execution):
    client = APIClient()
    client.force_login(alice)

    assert status_of(client, alices_execution["execution_id"])["status"] == "PENDING"
    assert client.get("/api/v1/executions").json()["count"] == 1
    assert submit(client, reference_payload("parallel_fanout"))["execution_id"]


def test_unknown_api_path_and_wrong_method_use_the_error_shape(alice_client):
    assert_error(alice_client.get("/api/v1/no-such-thing"), 404)
    assert_error(alice_client.get("/api/v1/workflow"), 405)
    assert_error(alice_client.put(f"/api/v1/workflow/{uuid.uuid4()}", {}, format="json"), 405)


# --- /api/v1/admin/dlq -----------------------------------------------------------------------


@pytest.fixture
def failed_execution(start) -> tuple[str, dict[str, TaskMessage]]:
    """alice's linear workflow whose `process` node failed for good; returns its id and tasks."""
    execution_id, tasks = start(reference_payload("linear_workflow"))
    ready = apply(run_handler(tasks["start"]))
    apply(exhausted_failure(ready["process"], "upstream said no"))
    return execution_id, {**tasks, **ready}


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


# --- circuits and attempt history ------------------------------------------------------------


def test_circuit_states_are_visible_to_every_signed_in_user(alice_client, streams):
    streams.client.hset(
        streams.circuit_key("call_llm"), mapping={"state": "open", "failures": "2", "until": "2000000000"}
    )

    response = alice_client.get("/api/v1/admin/circuits")

    assert response.status_code == 200, response.content
    assert response.json()["circuits"]["call_llm"] == {
        "state": "open",
        "consecutive_failures": 2,
        "retry_after": 2000000000.0,
    }
    assert APIClient().get("/api/v1/admin/circuits").status_code == 401


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
