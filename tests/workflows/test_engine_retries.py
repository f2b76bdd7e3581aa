"""Failed attempts in the engine: retries with backoff through the delayed set, dead letters when
an error is permanent or the attempts are spent, and DLQ triage (retry with fresh attempts, discard).

Executions are submitted and triggered through the services; a FakeWorker reads and reports
tasks over the real streams; `orchestrate` applies completions like a runorchestrator process.
"""

import json
import time

import pytest

from dlq.models import DeadLetter
from tests.clock import ManualClock
from workflows.messages import decode_task
from workflows.models import Execution, TaskAttempt, TaskRun
from workflows.orchestrator import Orchestrator
from workflows.services import Conflict, NotFound
from workflows.triage import dead_letter_discard, dead_letter_retry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

# Two roots that run side by side and a node that joins them.
FORK = {
    "name": "retry test",
    "dag": {
        "nodes": [
            {"id": "left", "handler": "input", "config": {"side": "left"}},
            {"id": "right", "handler": "input", "config": {"side": "right"}},
            {"id": "join", "handler": "output", "dependencies": ["left", "right"]},
        ]
    },
}


@pytest.fixture(autouse=True)
def retry_policy(settings):
    """Three attempts, 10 s then 20 s apart, no jitter: delays are exact."""
    settings.RETRY_MAX_ATTEMPTS = 3
    settings.RETRY_BACKOFF_BASE = 10.0
    settings.RETRY_BACKOFF_MAX = 60.0
    settings.RETRY_JITTER = 0.0


def task_run(execution: Execution, node_id: str) -> TaskRun:
    return TaskRun.objects.get(execution=execution, node_id=node_id)


def statuses(execution: Execution) -> dict[str, str]:
    return dict(TaskRun.objects.filter(execution=execution).values_list("node_id", "status"))


def delayed(streams) -> dict[str, tuple]:
    """The delayed set: member -> (due, task message)."""
    members = streams.client.zrange(streams.delayed, 0, -1, withscores=True)
    bodies = streams.client.hgetall(streams.delayed_bodies)
    return {
        member.decode(): (due, decode_task({"v": "1.0", "body": bodies[member]})) for member, due in members
    }


def make_due(streams) -> int:
    """Time passes: every delayed task is due; move them to the task stream."""
    for member in streams.client.zrange(streams.delayed, 0, -1):
        streams.client.zadd(streams.delayed, {member: time.time() - 1})
    return streams.move_due_delayed()


def fail_permanently(start_workflow, worker, orchestrate, node_id: str = "left") -> Execution:
    execution = start_workflow(FORK)
    worker.fail(worker.take()[node_id], permanent=True, code="invalid_config")
    orchestrate()
    return execution


# --- retries ---------------------------------------------------------------------------------


def test_failed_attempt_with_attempts_left_is_retried_after_a_backoff(
    streams, start_workflow, worker, orchestrate
):
    execution = start_workflow(FORK)
    left = task_run(execution, "left")
    sent = worker.fail(worker.take()["left"])
    before = time.time()

    assert orchestrate() == 1

    [attempt] = TaskAttempt.objects.filter(task_run=left)
    assert attempt.attempt == 1
    assert attempt.error == sent.error
    assert attempt.error["category"] == "handler"
    assert attempt.worker == "worker-1"
    assert attempt.finished_at is not None
    left.refresh_from_db()
    assert (left.status, left.attempt, left.retry_base) == (TaskRun.Status.QUEUED, 2, 0)
    assert left.queued_at.timestamp() == pytest.approx(before + 10, abs=2)
    [(member, (due, message))] = delayed(streams).items()
    assert member == f"{left.pk}:2"
    assert due == pytest.approx(before + 10, abs=2)
    assert (message.task_id, message.node_id, message.attempt) == (left.pk, "left", 2)
    assert message.config == {"side": "left"}
    assert streams.client.xlen(streams.tasks) == 1  # only `right`, still waiting
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert not DeadLetter.objects.exists()


def test_backoff_doubles_and_the_last_attempt_is_dead_lettered(streams, start_workflow, worker, orchestrate):
    execution = start_workflow(FORK)
    left = task_run(execution, "left")
    worker.fail(worker.take()["left"])
    orchestrate()
    assert make_due(streams) == 1

    worker.fail(worker.take()["left"])
    before = time.time()
    orchestrate()

    [(due, message)] = delayed(streams).values()
    assert message.attempt == 3
    assert due == pytest.approx(before + 20, abs=2)

    assert make_due(streams) == 1
    worker.fail(worker.take()["left"])
    orchestrate()

    assert delayed(streams) == {}
    assert list(TaskAttempt.objects.filter(task_run=left).values_list("attempt", flat=True)) == [1, 2, 3]
    letter = DeadLetter.objects.get(task_run=left)
    assert (letter.attempt, letter.category, letter.code) == (3, "handler", "upstream_down")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED


def test_node_retry_block_overrides_the_default_policy(streams, start_workflow, worker, orchestrate):
    payload = json.loads(json.dumps(FORK))
    payload["dag"]["nodes"][0]["retry"] = {"max_attempts": 1}
    execution = start_workflow(payload)

    worker.fail(worker.take()["left"])
    orchestrate()

    assert delayed(streams) == {}
    assert DeadLetter.objects.get(execution=execution).node_id == "left"


def test_a_late_completion_of_a_retried_attempt_is_fenced_off(streams, start_workflow, worker, orchestrate):
    execution = start_workflow(FORK)
    entry = worker.take()["left"]
    worker.fail(entry)
    orchestrate()

    worker.succeed(entry)  # the first attempt reports again, e.g. after a redelivery
    orchestrate()

    left = task_run(execution, "left")
    assert (left.status, left.attempt) == (TaskRun.Status.QUEUED, 2)
    assert TaskAttempt.objects.filter(task_run=left).count() == 1


# --- permanent errors ------------------------------------------------------------------------


def test_permanent_error_dead_letters_without_retrying(streams, start_workflow, worker, orchestrate):
    execution = start_workflow(FORK)
    entries = worker.take()
    sent = worker.fail(entries["left"], permanent=True, code="invalid_config")

    orchestrate()

    assert delayed(streams) == {}
    left = task_run(execution, "left")
    assert (left.status, left.attempt) == (TaskRun.Status.FAILED, 1)
    assert left.error == sent.error
    assert TaskAttempt.objects.filter(task_run=left).count() == 1
    letter = DeadLetter.objects.get()
    assert (letter.task_run_id, letter.execution_id, letter.node_id, letter.handler) == (
        left.pk,
        execution.pk,
        "left",
        "input",
    )
    assert (letter.attempt, letter.category, letter.code) == (1, "validation", "invalid_config")
    assert letter.message == "left failed"
    assert letter.config == {"side": "left"}
    assert letter.traceback_hash == sent.error["traceback_hash"]
    assert "HandlerError" in letter.traceback
    assert letter.status == DeadLetter.Status.OPEN
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert execution.finished_at is not None
    assert execution.error["code"] == "task_failed"
    assert execution.error["node_id"] == "left"
    assert statuses(execution) == {
        "left": TaskRun.Status.FAILED,
        "right": TaskRun.Status.CANCELLED,
        "join": TaskRun.Status.CANCELLED,
    }
    [(_, fields)] = streams.client.xrange(streams.dlq)
    event = json.loads(fields[b"body"])
    assert event == {
        "dead_letter_id": letter.pk,
        "execution_id": str(execution.pk),
        "node_id": "left",
        "handler": "input",
        "attempt": 1,
        "category": "validation",
        "code": "invalid_config",
        "message": "left failed",
    }


def test_completions_of_a_failed_execution_are_ignored(streams, start_workflow, worker, orchestrate):
    execution = start_workflow(FORK)
    entries = worker.take()
    worker.fail(entries["left"], permanent=True)
    orchestrate()

    worker.succeed(entries["right"])
    orchestrate()

    assert task_run(execution, "right").status == TaskRun.Status.CANCELLED
    assert streams.client.xlen(streams.completions) == 0


def test_no_retry_is_scheduled_for_an_execution_that_failed_in_the_same_batch(
    streams, start_workflow, worker, orchestrate
):
    execution = start_workflow(FORK)
    entries = worker.take()
    worker.fail(entries["left"], permanent=True)
    worker.fail(entries["right"])

    orchestrate()

    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert task_run(execution, "right").status == TaskRun.Status.CANCELLED
    assert delayed(streams) == {}


def verdict(streams, entry, consumer: str = "worker-2") -> str:
    """What admission says to a worker that reads this entry now."""
    [admission] = streams.admit([entry.message], consumer, claim_ms=1000, probe_seconds=1)
    return admission.verdict


def test_a_failure_has_workers_drop_and_stop_the_rest_of_its_execution(
    streams, start_workflow, worker, orchestrate
):
    execution = start_workflow(FORK)
    entries = worker.take()
    worker.fail(entries["left"], permanent=True)
    orchestrate()

    # `right` went out before the failure: read again, it is dropped; while it runs, the
    # worker's watchdog sees the flag and stops it.
    assert verdict(streams, entries["right"]) == "cancelled"
    assert streams.cancelled_executions([str(execution.id)]) == {str(execution.id)}


# --- DLQ triage ------------------------------------------------------------------------------


def test_dead_letter_retry_resumes_the_execution_with_fresh_attempts(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = fail_permanently(start_workflow, worker, orchestrate)
    letter = DeadLetter.objects.get()
    streams.client.xtrim(streams.tasks, maxlen=0)  # `right`'s old message; its run was cancelled

    resolved = dead_letter_retry(dead_letter_id=letter.pk, user=operator, note="config fixed")

    assert resolved.status == DeadLetter.Status.RETRIED
    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by, letter.note) == (
        DeadLetter.Status.RETRIED,
        operator,
        "config fixed",
    )
    assert letter.resolved_at is not None
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert (execution.finished_at, execution.error, execution.unfinished_tasks) == (None, None, 3)
    left, right = task_run(execution, "left"), task_run(execution, "right")
    assert (left.status, left.attempt, left.retry_base) == (TaskRun.Status.QUEUED, 2, 1)
    assert (right.status, right.attempt) == (TaskRun.Status.QUEUED, 2)
    assert task_run(execution, "join").status == TaskRun.Status.PENDING
    published = {t.node_id: t for t in (decode_task(f) for _, f in streams.client.xrange(streams.tasks))}
    assert {n: t.attempt for n, t in published.items()} == {"left": 2, "right": 2}
    assert published["left"].config == {"side": "left"}

    # Fresh budget: attempt 2 is the first of three again, so its failure is retried.
    entries = worker.take()
    worker.fail(entries["left"])
    worker.succeed(entries["right"])
    orchestrate()
    left.refresh_from_db()
    assert (left.status, left.attempt) == (TaskRun.Status.QUEUED, 3)
    assert DeadLetter.objects.count() == 1

    make_due(streams)
    worker.succeed(worker.take()["left"])
    orchestrate()
    worker.succeed(worker.take()["join"])
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert execution.unfinished_tasks == 0


def test_dead_letter_retry_fences_off_the_cancelled_siblings_old_attempt(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = start_workflow(FORK)
    entries = worker.take()
    worker.fail(entries["left"], permanent=True)
    orchestrate()
    dead_letter_retry(dead_letter_id=DeadLetter.objects.get().pk, user=operator)

    worker.succeed(entries["right"])  # attempt 1, started before the failure
    orchestrate()

    right = task_run(execution, "right")
    assert (right.status, right.attempt) == (TaskRun.Status.QUEUED, 2)


def test_dead_letter_retry_sets_a_new_deadline(streams, start_workflow, worker, orchestrate, operator):
    execution = start_workflow({**FORK, "timeout_seconds": 600})
    worker.fail(worker.take()["left"], permanent=True)
    orchestrate()
    before = time.time()

    dead_letter_retry(dead_letter_id=DeadLetter.objects.get().pk, user=operator)

    execution.refresh_from_db()
    assert execution.deadline.timestamp() == pytest.approx(before + 600, abs=5)


def test_retrying_a_dead_letter_twice_is_a_conflict(start_workflow, worker, orchestrate, operator):
    fail_permanently(start_workflow, worker, orchestrate)
    letter = DeadLetter.objects.get()
    dead_letter_retry(dead_letter_id=letter.pk, user=operator)

    with pytest.raises(Conflict) as raised:
        dead_letter_retry(dead_letter_id=letter.pk, user=operator)

    assert raised.value.code == "already_resolved"
    assert raised.value.status == 409


def test_discard_closes_the_dead_letter_and_leaves_the_execution(
    start_workflow, worker, orchestrate, operator
):
    execution = fail_permanently(start_workflow, worker, orchestrate)
    letter = DeadLetter.objects.get()

    dead_letter_discard(dead_letter_id=letter.pk, user=operator, note="not worth it")

    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by, letter.note) == (
        DeadLetter.Status.DISCARDED,
        operator,
        "not worth it",
    )
    assert letter.resolved_at is not None
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    with pytest.raises(Conflict, match="already DISCARDED"):
        dead_letter_discard(dead_letter_id=letter.pk, user=operator)
    with pytest.raises(Conflict, match="already DISCARDED"):
        dead_letter_retry(dead_letter_id=letter.pk, user=operator)


def test_discarding_a_retried_dead_letter_is_a_conflict(start_workflow, worker, orchestrate, operator):
    fail_permanently(start_workflow, worker, orchestrate)
    letter = DeadLetter.objects.get()
    dead_letter_retry(dead_letter_id=letter.pk, user=operator)

    with pytest.raises(Conflict, match="already RETRIED"):
        dead_letter_discard(dead_letter_id=letter.pk, user=operator)


@pytest.mark.parametrize("resolve", [dead_letter_retry, dead_letter_discard])
def test_unknown_dead_letter_is_not_found(resolve, operator):
    with pytest.raises(NotFound):
        resolve(dead_letter_id=999_999, user=operator)


def test_two_dead_letters_from_one_batch_can_both_be_retried(start_workflow, worker, orchestrate, operator):
    execution = start_workflow(FORK)
    entries = worker.take()
    for node in ("left", "right"):
        worker.fail(entries[node], permanent=True)
    orchestrate()  # both failures land in one batch
    assert DeadLetter.objects.count() == 2

    for letter in DeadLetter.objects.order_by("node_id"):
        dead_letter_retry(dead_letter_id=letter.pk, user=operator)

    assert statuses(execution) == {
        "left": TaskRun.Status.QUEUED,
        "right": TaskRun.Status.QUEUED,
        "join": TaskRun.Status.PENDING,
    }


def test_discarding_the_other_dead_letter_of_a_resumed_execution_stops_it_again(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = start_workflow(FORK)
    entries = worker.take()
    for node in ("left", "right"):
        worker.fail(entries[node], permanent=True)
    orchestrate()
    left, right = DeadLetter.objects.order_by("node_id")
    dead_letter_retry(dead_letter_id=left.pk, user=operator)
    requeued = worker.take()
    assert set(requeued) == {"left"}  # the retry lifted the stop: `left` runs again

    dead_letter_discard(dead_letter_id=right.pk, user=operator)

    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert verdict(streams, requeued["left"]) == "cancelled"


def test_a_retry_falls_due_by_the_orchestrators_clock(streams, start_workflow, worker):
    clock = ManualClock()
    clock.advance(3600)  # an hour ahead of the system's clock: the due time must follow this one
    orchestrator = Orchestrator(streams, consumer="orchestrator-1", batch_size=100, block_ms=10, clock=clock)
    start_workflow(FORK)
    worker.fail(worker.take()["left"])

    assert orchestrator.step() == 0  # first, what it took and never acked before: nothing
    assert orchestrator.step() == 1

    [(due, message)] = delayed(streams).values()
    assert message.attempt == 2
    assert due == pytest.approx(clock.time() + 10, abs=0.01)
