"""workflows.client: a Django project starts workflows from its own code, and the start belongs to
the caller's transaction. Real commits and rollbacks here (a transactional test database), the
real task stream, a fake worker and the real orchestrator."""

import pytest
from django.db import transaction

from tests.reference_payloads import load as reference_payload
from workflows import client
from workflows.dag import DagError
from workflows.messages import decode_task
from workflows.models import Execution, Workflow
from workflows.reaper import Reaper, ReaperConfig
from workflows.services import Conflict

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

LINEAR = reference_payload("linear_workflow")


class Abort(Exception):
    """Whatever makes the caller's transaction roll back."""


def published(streams) -> list:
    return [decode_task(fields) for _, fields in streams.client.xrange(streams.tasks)]


def test_a_start_rolled_back_with_the_callers_transaction_leaves_nothing(streams, alice):
    with pytest.raises(Abort), transaction.atomic():
        client.submit(LINEAR["dag"], name="rolled back", params={"n": 1}, owner=alice)
        raise Abort

    assert not Workflow.objects.exists()
    assert not Execution.objects.exists()
    assert published(streams) == []


def test_a_start_committed_with_the_callers_transaction_runs(streams, alice, worker, orchestrate):
    with transaction.atomic():
        execution = client.submit(LINEAR["dag"], name="committed", params={"n": 1}, owner=alice)
        assert published(streams) == []  # nothing leaves before the caller commits

    [root] = published(streams)
    assert (root.execution_id, root.params) == (str(execution.pk), {"n": 1})
    for _ in range(len(LINEAR["dag"]["nodes"])):
        for entry in worker.take().values():
            worker.succeed(entry)
        orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def test_a_publish_lost_after_the_commit_is_recovered_from_the_queued_rows(streams, alice):
    with transaction.atomic():
        execution = client.submit(LINEAR["dag"], name="crash after commit", owner=alice)
    streams.client.xtrim(streams.tasks, maxlen=0)  # as if the process died before publishing
    streams.client.delete(*streams.client.scan_iter(f"{streams.prefix}:sent:*"))

    reaper = Reaper(streams, consumer="reaper-1", config=ReaperConfig(republish_after_seconds=0))

    assert reaper.republish_lost() == 1
    [root] = published(streams)
    assert root.execution_id == str(execution.pk)


def test_start_triggers_a_pending_execution_and_starts_new_ones_of_a_workflow(streams, alice):
    pending = client.submit(LINEAR["dag"], name="later", owner=alice, start=False)
    assert pending.status == Execution.Status.PENDING

    started = client.start(pending, params={"n": 2})
    another = client.start(pending.workflow, params={"n": 3})

    assert started.status == another.status == Execution.Status.RUNNING
    assert another.pk != pending.pk and another.owner == alice
    assert sorted(task.params["n"] for task in published(streams)) == [2, 3]
    with pytest.raises(Conflict):
        client.start(started)


def test_code_without_a_user_may_start_workflows(streams):
    execution = client.submit(LINEAR["dag"], name="system job")

    assert execution.owner is None
    assert client.start(execution.workflow).status == Execution.Status.RUNNING


def test_an_invalid_dag_raises_the_apis_error_and_stores_nothing(streams, alice):
    with pytest.raises(DagError, match="cycle"):
        client.submit(
            {
                "nodes": [
                    {"id": "a", "handler": "input", "dependencies": ["b"]},
                    {"id": "b", "handler": "input", "dependencies": ["a"]},
                ]
            },
            name="loop",
            owner=alice,
        )

    assert not Workflow.objects.exists()
