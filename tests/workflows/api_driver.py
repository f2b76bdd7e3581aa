"""Driving the API the way its clients, workers and orchestrators do, for the API tests.

No worker or orchestrator processes run. A test reads the task messages the API published to its
own Redis stream, runs each handler the way a worker would, and applies the outcomes with
`engine.completions_apply` in one transaction, the way an orchestrator does.

The fixtures here reach tests through tests/workflows/conftest.py and tests/dlq/conftest.py.
"""

import json
import time

import pytest
from rest_framework.test import APIClient

from tests import reference_payloads
from workflows.dispatch import Dispatch
from workflows.handlers import TaskContext, get_handler
from workflows.messages import CompletionMessage, TaskMessage, decode_task
from workflows.orchestrator import batch_apply

# The reference payloads live next to the repository (see DESIGN.md, "Handlers").
PAYLOADS_DIR = reference_payloads.DIRECTORY


@pytest.fixture
def own_streams(streams):
    """Every test publishes to streams of its own, never to a real deployment's."""
    return streams


@pytest.fixture
def fast_password_hashing(settings):
    # Every test creates users; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
        workflow_id=task.workflow_id,  # as a worker sends it: the one-statement paths need it
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


def apply_batch(*completions: CompletionMessage) -> Dispatch:
    """One orchestrator batch, applied as the orchestrator applies it (one statement when it can);
    returns what it would publish after commit."""
    return batch_apply(list(completions))


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


@pytest.fixture
def failed_execution(start) -> tuple[str, dict[str, TaskMessage]]:
    """alice's linear workflow whose `process` node failed for good (an OPEN dead letter);
    returns its id and tasks."""
    execution_id, tasks = start(reference_payload("linear_workflow"))
    ready = apply(run_handler(tasks["start"]))
    apply(exhausted_failure(ready["process"], "upstream said no"))
    return execution_id, {**tasks, **ready}
