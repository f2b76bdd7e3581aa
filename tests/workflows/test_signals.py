"""`workflows.signals`: a Django project hears when tasks and executions end, after the commit
that ended them and never for a rolled-back one. Real PostgreSQL (or SQLite), the real streams, a
fake worker and the real orchestrator, through both engine paths."""

import pytest
from django.db import transaction

from workflows import client, services, signals
from workflows.models import Execution, TaskRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

CHAIN = {
    "nodes": [
        {"id": "fetch", "handler": "input", "dependencies": []},
        {"id": "branch", "handler": "input", "dependencies": ["fetch"], "condition": "{{ params.n }} > 5"},
        {"id": "report", "handler": "output", "dependencies": ["fetch", "branch"]},
    ]
}


class Heard:
    """Connected receivers that note each signal with what the database said at that moment:
    a signal sent before its commit would see the old state."""

    def __init__(self):
        self.tasks, self.executions = [], []

    def task(self, sender, execution_id, workflow_id, node_id, status, **_):
        stored = TaskRun.objects.get(execution_id=execution_id, node_id=node_id).status
        self.tasks.append((node_id, status, stored))

    def execution(self, sender, execution_id, workflow_id, status, **_):
        execution = Execution.objects.get(pk=execution_id)
        assert str(execution.workflow_id) == workflow_id
        self.executions.append((status, execution.status))


@pytest.fixture
def heard():
    heard = Heard()
    signals.task_finished.connect(heard.task, dispatch_uid="test-task")
    signals.execution_finished.connect(heard.execution, dispatch_uid="test-execution")
    yield heard
    signals.task_finished.disconnect(dispatch_uid="test-task")
    signals.execution_finished.disconnect(dispatch_uid="test-execution")


def run_to_the_end(worker, orchestrate, *, fail: str | None = None) -> None:
    for _ in range(5):
        for node_id, entry in worker.take().items():
            if node_id == fail:
                worker.fail(entry, permanent=True)
            else:
                worker.succeed(entry)
        orchestrate()


def test_each_end_is_heard_once_after_its_commit(streams, alice, worker, orchestrate, heard):
    execution = client.submit(CHAIN, name="signals", params={"n": 1}, owner=alice)

    run_to_the_end(worker, orchestrate)

    assert heard.tasks == [
        ("fetch", "COMPLETED", "COMPLETED"),
        ("branch", "SKIPPED", "SKIPPED"),
        ("report", "COMPLETED", "COMPLETED"),
    ]
    assert heard.executions == [("COMPLETED", "COMPLETED")]
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def test_a_node_that_fails_for_good_is_heard_with_its_failed_execution(
    streams, alice, worker, orchestrate, heard
):
    client.submit(CHAIN, name="signals", params={"n": 9}, owner=alice)

    run_to_the_end(worker, orchestrate, fail="branch")

    assert heard.tasks == [("fetch", "COMPLETED", "COMPLETED"), ("branch", "FAILED", "FAILED")]
    assert heard.executions == [("FAILED", "FAILED")]


def test_a_failed_attempt_with_retries_left_is_not_an_end(streams, alice, worker, orchestrate, heard):
    client.submit(CHAIN, name="signals", params={"n": 9}, owner=alice)
    worker.succeed(worker.take()["fetch"])
    orchestrate()

    worker.fail(worker.take()["branch"])  # transient: the orchestrator schedules a retry
    orchestrate()

    assert heard.tasks == [("fetch", "COMPLETED", "COMPLETED")]
    assert heard.executions == []


def test_a_cancel_is_heard_once_committed_and_not_at_all_when_rolled_back(streams, alice, heard):
    execution = client.submit(CHAIN, name="signals", owner=alice)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.execution_cancel(execution=execution, user=alice)
        raise RuntimeError("the caller's transaction rolls back")
    assert heard.executions == []

    services.execution_cancel(execution=execution, user=alice)
    assert heard.executions == [("CANCELLED", "CANCELLED")]


def test_a_failing_receiver_does_not_stop_the_engine(streams, alice, worker, orchestrate, heard):
    def broken(**_):
        raise ValueError("a bug in the project's receiver")

    signals.execution_finished.connect(broken, dispatch_uid="test-broken")
    try:
        execution = client.submit(CHAIN, name="signals", params={"n": 1}, owner=alice)
        run_to_the_end(worker, orchestrate)
    finally:
        signals.execution_finished.disconnect(dispatch_uid="test-broken")

    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert heard.executions == [("COMPLETED", "COMPLETED")]
