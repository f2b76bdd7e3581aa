"""The orchestrator's batch loop against real PostgreSQL and Redis: bad completions are
isolated, stale attempts are fenced off even inside one batch, and a batch applied twice is
counted once."""

import contextlib

import pytest
from django.db import connection
from prometheus_client import REGISTRY

from dlq.models import DeadLetter
from workflows.messages import CompletionMessage, encode
from workflows.models import Execution, TaskRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

TWO_ROOTS_AND_A_JOIN = {
    "name": "two roots",
    "dag": {
        "nodes": [
            {"id": "a", "handler": "input", "retry": {"max_attempts": 3}},
            {"id": "b", "handler": "input"},
            {"id": "join", "handler": "output", "dependencies": ["a", "b"]},
        ]
    },
}


def run_of(execution: Execution, node_id: str) -> TaskRun:
    return TaskRun.objects.get(execution=execution, node_id=node_id)


def test_a_completion_the_database_refuses_fails_its_task_and_spares_the_batch(
    start_workflow, worker, orchestrate
):
    execution = start_workflow(TWO_ROOTS_AND_A_JOIN)
    taken = worker.take()
    worker.succeed(taken["b"])
    worker.succeed(taken["a"], output={"mean": float("nan")})  # JSON allows NaN; jsonb does not

    orchestrate()

    assert run_of(execution, "b").status == TaskRun.Status.COMPLETED
    a = run_of(execution, "a")
    assert a.status == TaskRun.Status.FAILED
    assert a.error["code"] == "unstorable_completion"
    assert DeadLetter.objects.get(execution=execution).node_id == "a"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED


# With the workflow id, PostgreSQL records and releases in one statement; without it (a message
# from an older producer) the orchestrator reads the execution first. Both must fence alike.
@pytest.mark.parametrize("carries_workflow", [True, False], ids=["one-statement", "execution-first"])
def test_a_stale_attempt_in_the_same_batch_as_the_current_one_is_fenced_off(
    start_workflow, worker, orchestrate, streams, settings, carries_workflow
):
    settings.RETRY_BACKOFF_BASE = 0
    execution = start_workflow(TWO_ROOTS_AND_A_JOIN)
    taken = worker.take()
    worker.fail(taken["a"])
    worker.succeed(taken["b"])
    orchestrate()
    a = run_of(execution, "a")
    assert (a.status, a.attempt) == (TaskRun.Status.QUEUED, 2)

    def completion(attempt: int, output: dict) -> CompletionMessage:
        return CompletionMessage(
            task_id=a.id,
            execution_id=str(execution.id),
            workflow_id=str(execution.workflow_id) if carries_workflow else None,
            node_id="a",
            attempt=attempt,
            ok=True,
            output=output,
        )

    streams.client.xadd(streams.completions, encode(completion(1, {"from": "stale attempt"})))
    streams.client.xadd(streams.completions, encode(completion(2, {"from": "current attempt"})))
    orchestrate()

    a.refresh_from_db()
    assert a.status == TaskRun.Status.COMPLETED
    assert a.output == {"from": "current attempt"}
    join = run_of(execution, "join")
    assert (join.status, join.pending_dependencies, join.attempt) == (TaskRun.Status.QUEUED, 0, 1)


def _counted() -> tuple[float, float]:
    """(workflow_completions_fenced_total, ok outcomes of `input` tasks) in this process."""
    fenced = REGISTRY.get_sample_value("workflow_completions_fenced_total") or 0.0
    ok = REGISTRY.get_sample_value("workflow_task_outcomes_total", {"handler": "input", "outcome": "ok"})
    return fenced, ok or 0.0


@contextlib.contextmanager
def next_commit_refused():
    """PostgreSQL refuses the next commit that changed a task run (a deferred constraint trigger,
    once), as a commit lost to a failover would be: the orchestrator applies the batch again."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE refuse_once")
        cursor.execute(
            "CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('refuse_once') = 1 THEN RAISE EXCEPTION 'commit refused'; END IF; "
            "RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER refuse_once AFTER UPDATE ON workflows_taskrun "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_once()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_once ON workflows_taskrun")
            cursor.execute("DROP FUNCTION refuse_once()")
            cursor.execute("DROP SEQUENCE refuse_once")


@pytest.mark.postgresql
def test_a_batch_whose_commit_is_refused_and_applied_again_counts_each_completion_once(
    start_workflow, worker, orchestrate
):
    execution = start_workflow(TWO_ROOTS_AND_A_JOIN)
    taken = worker.take()
    worker.succeed(taken["b"])
    orchestrate()
    fenced, ok = _counted()
    worker.succeed(taken["b"])  # a repeated delivery: fenced off
    worker.succeed(taken["a"])

    with next_commit_refused():
        orchestrate()

    assert run_of(execution, "a").status == TaskRun.Status.COMPLETED
    assert run_of(execution, "join").status == TaskRun.Status.QUEUED
    assert _counted() == (fenced + 1, ok + 1)
