"""During a rolling upgrade old and new runners share the streams: this release's worker and
orchestrator run an execution whose every task and completion message is in the previous
release's shape, or in a newer minor version carrying a field this release does not know.

Messages carry `v` ("major.minor", workflows/messages.py): readers reject another major,
ignore unknown fields and default missing optional ones. The previous shape is the one written
before `workflow_id` was added to tasks and completions (commit 3233360), the last change to the
schema: such a completion makes the orchestrator look the workflow up itself."""

import json
import time

import pytest

from tests import reference_payloads
from workflows.models import Execution, TaskRun
from workflows.worker import Worker, WorkerConfig

pytestmark = pytest.mark.django_db(transaction=True)

PREVIOUS_TASK_FIELDS = {
    "task_id",
    "execution_id",
    "node_id",
    "handler",
    "attempt",
    "config",
    "params",
    "upstream",
    "deadline",
    "timeout_seconds",
    "rate_limit",
    "deliveries",
}
PREVIOUS_COMPLETION_FIELDS = {
    "task_id",
    "execution_id",
    "node_id",
    "attempt",
    "ok",
    "output",
    "error",
    "exhausted",
    "started_at",
    "finished_at",
    "worker",
}


def previous_release(stream: str, body: dict) -> tuple[str, dict]:
    """The message as the previous release wrote it: version 1.0, no `workflow_id`."""
    fields = PREVIOUS_TASK_FIELDS if stream.endswith(":tasks") else PREVIOUS_COMPLETION_FIELDS
    return "1.0", {name: value for name, value in body.items() if name in fields}


def newer_minor(stream: str, body: dict) -> tuple[str, dict]:
    """The message as a later 1.x release might write it: a field this release does not know."""
    return "1.7", {**body, "priority": 5}


def rewrite_waiting(streams, stream: str, shape) -> int:
    """Replace every entry waiting in `stream` (not yet read by its group) by `shape` of it."""
    entries = streams.client.xrange(stream)
    for entry_id, fields in entries:
        version, body = shape(stream, json.loads(fields[b"body"]))
        streams.client.xdel(stream, entry_id)
        streams.client.xadd(stream, {"v": version, "body": json.dumps(body)})
    return len(entries)


def wait_for_entries(streams, stream: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while streams.client.xlen(stream) < count:
        assert time.monotonic() < deadline, f"{stream}: fewer than {count} entries"
        time.sleep(0.02)


@pytest.mark.parametrize("shape", [previous_release, newer_minor], ids=lambda shape: shape.__name__)
def test_an_execution_of_other_version_messages_completes(streams, start_workflow, orchestrate, shape):
    execution = start_workflow(reference_payloads.load("linear_workflow"))
    worker = Worker(streams, consumer="worker-new", config=WorkerConfig(concurrency=1, block_ms=100))
    rewritten = {"tasks": 0, "completions": 0}
    try:
        for _ in range(3):  # start -> process -> finish, one task at a time
            rewritten["tasks"] += rewrite_waiting(streams, streams.tasks, shape)
            assert worker.step() == 1
            wait_for_entries(streams, streams.completions, 1)
            rewritten["completions"] += rewrite_waiting(streams, streams.completions, shape)
            assert orchestrate() == 1
    finally:
        worker.close()

    assert rewritten == {"tasks": 3, "completions": 3}
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert set(TaskRun.objects.filter(execution=execution).values_list("status", flat=True)) == {
        TaskRun.Status.COMPLETED
    }
    assert streams.client.xlen(streams.dlq) == 0, "nothing parked as unreadable"
