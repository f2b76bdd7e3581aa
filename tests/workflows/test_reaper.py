"""The reaper's passes, one by one, against the real database and Redis: delayed retries, reclaim
of silent tasks and completions, poison messages, lost publishes, workflow timeouts.

Executions are submitted and triggered through the services; a FakeWorker reads and reports
tasks over the real streams; `orchestrate` applies completions like a runorchestrator process.
"""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from structlog.testing import capture_logs

from dlq.models import DeadLetter
from resilience.clock import SYSTEM, Clock
from tests.clock import ManualClock
from workflows.messages import decode_completion, decode_task
from workflows.models import Execution, TaskRun
from workflows.reaper import Reaper, ReaperConfig
from workflows.streams import ORCHESTRATORS_GROUP, WORKERS_GROUP

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

LINEAR = {
    "name": "reaper test",
    "dag": {
        "nodes": [
            {"id": "start", "handler": "input", "config": {"greeting": "hi"}},
            {"id": "finish", "handler": "output", "dependencies": ["start"]},
        ]
    },
}


def reaper(streams, consumer: str = "reaper-1", clock: Clock = SYSTEM, **config) -> Reaper:
    return Reaper(streams, consumer=consumer, config=ReaperConfig(**config), clock=clock)


def stream_tasks(streams) -> list:
    return [decode_task(fields) for _, fields in streams.client.xrange(streams.tasks)]


def task_run(execution: Execution, node_id: str) -> TaskRun:
    return TaskRun.objects.get(execution=execution, node_id=node_id)


@pytest.fixture
def instant_retries(settings):
    settings.RETRY_MAX_ATTEMPTS = 3
    settings.RETRY_BACKOFF_BASE = 0.0
    settings.RETRY_JITTER = 0.0


# --- delayed retries -------------------------------------------------------------------------


def test_move_due_delayed_dispatches_a_due_retry(
    streams, start_workflow, worker, orchestrate, instant_retries
):
    start_workflow(LINEAR)
    worker.fail(worker.take()["start"])
    orchestrate()
    assert streams.client.zcard(streams.delayed) == 1
    assert stream_tasks(streams) == []

    assert reaper(streams).move_due_delayed() == 1

    [retry] = stream_tasks(streams)
    assert (retry.node_id, retry.attempt) == ("start", 2)
    assert retry.config == {"greeting": "hi"}
    assert streams.client.zcard(streams.delayed) == 0
    assert reaper(streams).move_due_delayed() == 0


def test_move_due_delayed_leaves_a_retry_that_is_not_due(
    streams, start_workflow, worker, orchestrate, settings
):
    settings.RETRY_BACKOFF_BASE = 60.0
    start_workflow(LINEAR)
    worker.fail(worker.take()["start"])
    orchestrate()

    assert reaper(streams).move_due_delayed() == 0

    assert streams.client.zcard(streams.delayed) == 1
    assert stream_tasks(streams) == []


# --- reclaiming silent tasks, poison messages -------------------------------------------------


def test_reclaim_tasks_redelivers_a_silent_task(streams, start_workflow, worker):
    execution = start_workflow(LINEAR)
    entry = worker.take()["start"]
    claim = streams.claim_key(entry.message.task_id, entry.message.attempt)
    assert streams.client.exists(claim)

    assert reaper(streams, visibility_timeout_seconds=0, max_deliveries=3).reclaim_tasks() == 1

    [again] = stream_tasks(streams)
    assert again == type(entry.message)(**{**entry.message.__dict__, "deliveries": 1})
    assert streams.client.exists(claim) == 0  # released, so the next worker may admit it
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    assert worker.take(consumer="worker-2")["start"].message.deliveries == 1
    run = task_run(execution, "start")
    assert (run.status, run.attempt) == (TaskRun.Status.QUEUED, 1)


def test_reclaim_tasks_leaves_work_that_is_not_idle(streams, start_workflow, worker):
    start_workflow(LINEAR)
    worker.take()

    assert reaper(streams, visibility_timeout_seconds=30).reclaim_tasks() == 0

    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 1


def test_task_delivered_too_often_becomes_a_poison_dead_letter(streams, start_workflow, worker, orchestrate):
    execution = start_workflow(LINEAR)
    sweeper = reaper(streams, visibility_timeout_seconds=0, max_deliveries=3)
    for deliveries in (0, 1):
        assert worker.take(consumer=f"worker-{deliveries}")["start"].message.deliveries == deliveries
        assert sweeper.reclaim_tasks() == 1
    entry = worker.take(consumer="worker-2")["start"]
    assert entry.message.deliveries == 2

    assert sweeper.reclaim_tasks() == 1

    assert stream_tasks(streams) == []
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    assert streams.client.exists(streams.claim_key(entry.message.task_id, 1)) == 0
    [(_, fields)] = streams.client.xrange(streams.completions)
    poison = decode_completion(fields)
    assert (poison.ok, poison.exhausted, poison.attempt) == (False, True, 1)
    assert poison.error["category"] == "poison"
    assert poison.error["permanent"] is True

    assert orchestrate() == 1

    letter = DeadLetter.objects.get(execution=execution)
    assert (letter.node_id, letter.category, letter.code, letter.attempt) == (
        "start",
        "poison",
        "poison_message",
        1,
    )
    assert letter.handler == "input"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert execution.error["node_id"] == "start"
    assert task_run(execution, "start").status == TaskRun.Status.FAILED
    assert task_run(execution, "finish").status == TaskRun.Status.CANCELLED
    assert streams.client.xlen(streams.dlq) == 1


def test_max_deliveries_of_one_poisons_on_the_first_reclaim(streams, start_workflow, worker):
    start_workflow(LINEAR)
    worker.take()

    assert reaper(streams, visibility_timeout_seconds=0, max_deliveries=1).reclaim_tasks() == 1

    assert stream_tasks(streams) == []
    assert streams.client.xlen(streams.completions) == 1


def test_reclaim_tasks_drops_entries_deleted_while_pending(streams, start_workflow, worker):
    start_workflow(LINEAR)
    entry = worker.take()["start"]
    streams.client.xdel(streams.tasks, entry.id)

    assert reaper(streams, visibility_timeout_seconds=0).reclaim_tasks() == 1

    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    assert streams.client.xlen(streams.completions) == 0


def test_reclaim_tasks_drops_an_undecodable_entry(streams):
    streams.client.xadd(streams.tasks, {"v": "1.0", "body": "not json"})
    streams.read_tasks("worker-1", 10, 10)

    assert reaper(streams, visibility_timeout_seconds=0).reclaim_tasks() == 1

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0


# --- reclaiming completions ------------------------------------------------------------------


def test_reclaim_completions_hands_back_what_a_dead_orchestrator_read(
    streams, start_workflow, worker, orchestrate
):
    execution = start_workflow(LINEAR)
    worker.succeed(worker.take()["start"])
    [taken] = streams.read_completions("orchestrator-dead", 10, 10)

    assert reaper(streams, visibility_timeout_seconds=0).reclaim_completions() == 1

    assert streams.client.xpending(streams.completions, ORCHESTRATORS_GROUP)["pending"] == 0
    [(entry_id, fields)] = streams.client.xrange(streams.completions)
    assert entry_id != taken.id
    assert fields == taken.fields
    assert orchestrate() == 1
    assert task_run(execution, "start").status == TaskRun.Status.COMPLETED
    assert task_run(execution, "finish").status == TaskRun.Status.QUEUED
    assert streams.client.xlen(streams.completions) == 0


def test_reclaim_completions_leaves_recent_ones(streams, start_workflow, worker):
    start_workflow(LINEAR)
    worker.succeed(worker.take()["start"])
    streams.read_completions("orchestrator-1", 10, 10)

    assert reaper(streams, visibility_timeout_seconds=30).reclaim_completions() == 0

    assert streams.client.xpending(streams.completions, ORCHESTRATORS_GROUP)["pending"] == 1


# --- lost publishes --------------------------------------------------------------------------


def test_republish_lost_publishes_a_queued_task_whose_message_was_lost(streams, start_workflow):
    execution = start_workflow(LINEAR)
    [(entry_id, fields)] = streams.client.xrange(streams.tasks)
    streams.client.xdel(streams.tasks, entry_id)

    assert reaper(streams, republish_after_seconds=0).republish_lost() == 1

    [republished] = stream_tasks(streams)
    assert republished == decode_task(fields)
    assert republished.task_id == task_run(execution, "start").pk


def test_republish_lost_waits_for_republish_after_seconds(streams, start_workflow):
    start_workflow(LINEAR)
    streams.client.xtrim(streams.tasks, maxlen=0)
    clock = ManualClock()
    sweeper = reaper(streams, clock=clock, republish_after_seconds=60)

    assert sweeper.republish_lost() == 0
    clock.advance(59)
    assert sweeper.republish_lost() == 0
    clock.advance(2)
    assert sweeper.republish_lost() == 1


@pytest.mark.parametrize("held_by", ["claim", "done", "delayed"])
def test_republish_lost_skips_a_task_that_is_accounted_for(streams, start_workflow, worker, held_by):
    start_workflow(LINEAR)
    if held_by == "claim":
        worker.take()
    elif held_by == "done":
        worker.succeed(worker.take()["start"])  # completion published, not yet applied
    else:
        [task] = stream_tasks(streams)
        streams.client.xtrim(streams.tasks, maxlen=0)
        streams.publish_tasks([], delayed=[(task, time.time() + 60)])

    assert reaper(streams, republish_after_seconds=0).republish_lost() == 0


def test_republish_lost_skips_executions_that_are_not_running(streams, start_workflow):
    execution = start_workflow(LINEAR)
    streams.client.xtrim(streams.tasks, maxlen=0)
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.CANCELLED)

    assert reaper(streams, republish_after_seconds=0).republish_lost() == 0


def test_republish_lost_does_not_duplicate_a_task_still_waiting_in_the_stream(streams, start_workflow):
    start_workflow(LINEAR)
    sweeper = reaper(streams, republish_after_seconds=0)

    sweeper.republish_lost()
    sweeper.republish_lost()

    assert len(stream_tasks(streams)) == 1


def test_sweep_after_redis_lost_its_data_republishes_every_queued_task(streams, start_workflow):
    streams.survived()
    execution = start_workflow(LINEAR)
    streams.client.delete(*streams.client.scan_iter(f"{streams.prefix}:*"))
    clock = ManualClock()
    sweeper = reaper(streams, clock=clock, visibility_timeout_seconds=30)

    assert sweeper.sweep()["republished"] == 0  # live workers get one visibility timeout to re-claim
    assert streams.client.xinfo_groups(streams.completions)  # groups recreated
    clock.advance(29.9)
    assert sweeper.sweep()["republished"] == 0
    clock.advance(0.1)
    assert sweeper.sweep()["republished"] == 1

    [task] = stream_tasks(streams)
    assert task.task_id == task_run(execution, "start").pk
    assert sweeper.sweep()["republished"] == 0


@pytest.mark.parametrize("work_in_flight", [True, False], ids=["queued-work", "fresh-start"])
def test_a_missing_epoch_warns_only_when_queued_work_may_have_been_lost(
    streams, start_workflow, work_in_flight
):
    if work_in_flight:
        start_workflow(LINEAR)

    with capture_logs() as logs:
        reaper(streams).sweep()

    [event] = [e for e in logs if e["event"] == "redis_epoch_missing"]
    assert event["log_level"] == ("warning" if work_in_flight else "info")


def test_after_redis_lost_its_data_a_running_task_reclaimed_by_its_worker_is_not_republished(
    streams, start_workflow
):
    streams.survived()
    execution = start_workflow(LINEAR)
    [(entry_id, message)] = [(i, decode_task(f)) for i, f in streams.client.xrange(streams.tasks)]
    streams.client.delete(*streams.client.scan_iter(f"{streams.prefix}:*"))
    sweeper = reaper(streams, visibility_timeout_seconds=0)
    streams.ensure_groups()

    streams.heartbeat("worker-1", [(entry_id, message)], claim_ms=5_000)  # the worker's next beat

    assert sweeper.sweep()["republished"] == 0
    assert task_run(execution, "start").status == TaskRun.Status.QUEUED


# --- workflow timeouts -----------------------------------------------------------------------


def test_time_out_executions_ends_an_execution_past_its_deadline(streams, start_workflow):
    execution = start_workflow({**LINEAR, "timeout_seconds": 60})
    on_time = start_workflow({**LINEAR, "timeout_seconds": 90})
    assert execution.deadline is not None
    clock = ManualClock()
    sweeper = reaper(streams, clock=clock)

    assert sweeper.time_out_executions() == 0
    clock.advance(61)
    assert sweeper.time_out_executions() == 1

    execution.refresh_from_db()
    assert execution.status == Execution.Status.TIMED_OUT
    assert execution.error["code"] == "workflow_timeout"
    assert execution.finished_at is not None
    assert set(TaskRun.objects.filter(execution=execution).values_list("status", flat=True)) == {
        TaskRun.Status.CANCELLED
    }
    assert streams.cancelled_executions([str(execution.id), str(on_time.id)]) == {str(execution.id)}
    on_time.refresh_from_db()
    assert on_time.status == Execution.Status.RUNNING
    assert reaper(streams).time_out_executions() == 0


def test_a_timed_out_executions_tasks_are_refused_by_workers(streams, start_workflow, worker):
    execution = start_workflow({**LINEAR, "timeout_seconds": 60})
    Execution.objects.filter(pk=execution.pk).update(deadline=timezone.now() - timedelta(seconds=1))

    reaper(streams).time_out_executions()

    assert worker.take() == {}


# --- two reapers -----------------------------------------------------------------------------


def test_concurrent_sweeps_do_not_double_dispatch_delayed_tasks(
    streams, start_workflow, worker, orchestrate, instant_retries
):
    streams.survived()  # Redis has not lost anything: no wholesale republish
    for _ in range(10):
        start_workflow(LINEAR)
    for entry in streams.read_tasks("worker-1", 100, 10):
        worker.fail(entry)
    orchestrate()
    assert streams.client.zcard(streams.delayed) == 10
    reapers = [reaper(streams, f"reaper-{i}") for i in range(2)]
    barrier = threading.Barrier(len(reapers))
    results, errors = [], []

    def sweep(one: Reaper) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                results.append(one.sweep())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep, args=(one,)) for one in reapers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(r["delayed_moved"] for r in results) == 10
    assert sum(r["republished"] for r in results) == 0
    copies = Counter((t.task_id, t.attempt) for t in stream_tasks(streams))
    assert len(copies) == 10
    assert set(copies.values()) == {1}
