"""Running work again: re-run an ended execution from its failure, re-trigger a workflow with new
params, and `tasks_resume`, the one resume that a re-run and a dead-letter retry both go through."""

from datetime import timedelta

import structlog
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from dlq.models import DeadLetter
from workflows import engine, maps, permissions, runs, services, stop_flags
from workflows.models import Execution, TaskRun
from workflows.services import Conflict, NotFound
from workflows.streams import get_streams

log = structlog.get_logger(__name__)

# Ended short of COMPLETED: what a re-run from failure can pick up again.
RERUNNABLE = frozenset({Execution.Status.FAILED, Execution.Status.TIMED_OUT, Execution.Status.CANCELLED})
RERUN_NOTE = "re-run from failure"


def execution_rerun(*, execution: Execution, user) -> Execution:
    """Re-run from failure (Airflow's "clear failed tasks"): the failed nodes and those the end
    cancelled run again, each with fresh attempts; completed and skipped nodes keep their outputs;
    the execution's open dead letters are closed as RETRIED by `user`."""
    services.permission_require(
        user, execution.owner_id, permissions.RUN_ANY_EXECUTION, "re-run another user's execution"
    )
    with transaction.atomic():
        # Locked first, like every writer of run state: a racing orchestrator batch, DLQ retry or
        # second re-run waits here and then sees the status this one leaves.
        run = runs.lock_runs([execution.id]).get(str(execution.id))
        if run is None:
            raise NotFound(f"no execution with id {str(execution.id)!r}")
        if run.status not in RERUNNABLE:
            raise Conflict(
                f"execution is {run.status}; only a FAILED, TIMED_OUT or CANCELLED execution can be "
                "re-run from failure",
                code="not_rerunnable",
            )
        if Execution.objects.filter(pk=run.id, started_at__isnull=True).exists():
            raise Conflict(
                "execution was cancelled before it started; re-trigger it to run it",
                code="never_started",
            )
        # Closed first: a node that fails again at once (a template that still cannot resolve)
        # writes a new letter in this transaction, and that one stays open.
        DeadLetter.objects.filter(execution_id=run.id).resolve(
            status=DeadLetter.Status.RETRIED, user=user, note=RERUN_NOTE
        )
        tasks_resume(run, TaskRun.objects.filter(execution_id=run.id, status=TaskRun.Status.FAILED))
    log.info("execution_rerun", execution_id=str(run.id), status=run.status)
    execution.refresh_from_db()
    return execution


def tasks_resume(run: runs.Run, failed: QuerySet[TaskRun]) -> None:
    """Run the `failed` nodes of a locked execution again, each from a fresh attempt budget
    (`retry_base` = its last attempt: attempt numbers keep increasing, so late completions of old
    attempts are fenced off and TaskAttempt history stays). If the execution had ended, it runs
    again: the nodes its end cancelled come back too, its counters and deadline are reset and,
    after commit, its Redis stop flag and finished marker are lifted. Ready nodes are then queued
    (or skipped) and published after commit.

    Dependency counters need no repair: a node's counter only ever drops when a parent completes
    or is skipped, so a re-run node still waits for exactly its unsatisfied parents. A mapped
    node's count of items left is rebuilt (`maps.resume`)."""
    ended = run.status in Execution.TERMINAL
    again = failed
    if ended:
        again |= TaskRun.objects.filter(execution_id=run.id, status=TaskRun.Status.CANCELLED)
    again.update(status=TaskRun.Status.PENDING, retry_base=F("attempt"), finished_at=None)
    maps.resume(run)
    streams = get_streams()
    if ended:
        _reopen(run)
        # Registered before the publish below, so it runs first: workers must not drop the new
        # tasks for a stop flag that is about to go.
        stop_flags.sync_after_commit(run.id)
    ready = TaskRun.objects.filter(
        execution_id=run.id, status=TaskRun.Status.PENDING, pending_dependencies=0
    ).values_list("id", "node_id", "attempt")
    messages = engine.advance([(run, node_id, pk, attempt) for pk, node_id, attempt in ready])
    finished = engine.finish_runs([run])  # every re-run node may have been skipped, or failed again
    published = messages if run.failure is None else []
    stopped = [str(run.id)] if run.failure is not None else []
    transaction.on_commit(
        lambda: streams.publish_tasks(
            published, dead_letters=run.dead_letters, finished=finished, stopped=stopped
        ),
        robust=True,
    )


def _reopen(run: runs.Run) -> None:
    """The ended execution is RUNNING again: no end, no error, its unfinished nodes counted anew
    (a failed node left failed still counts, so the execution cannot complete without it) and a
    fresh deadline."""
    now = timezone.now()
    unfinished = TaskRun.objects.filter(execution_id=run.id).exclude(status__in=TaskRun.SATISFIED).count()
    timeout = Execution.objects.values_list("workflow__timeout_seconds", flat=True).get(pk=run.id)
    deadline = now + timedelta(seconds=timeout) if timeout else None
    Execution.objects.filter(pk=run.id).update(
        status=Execution.Status.RUNNING,
        finished_at=None,
        error=None,
        unfinished_tasks=unfinished,
        deadline=deadline,
        stop_flag_stale=True,
    )
    run.reopen(unfinished, deadline)


def execution_retrigger(*, execution: Execution, params: dict, owner) -> Execution:
    """Re-trigger with new params: a NEW execution of the same workflow, owned by `owner`,
    started with `params` (`services.workflow_start`); the old execution is left as it is."""
    new = services.workflow_start(workflow=execution.workflow, params=params, owner=owner)
    log.info("execution_retriggered", execution_id=str(new.id), previous_execution_id=str(execution.id))
    return new
