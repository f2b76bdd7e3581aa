"""Dead-letter triage: retry (fresh attempts, execution RUNNING again) and discard.

The API, the admin and the dashboard all call these, so a retry behaves the same everywhere.
"""

import structlog
from django.db import transaction

from dlq.models import DeadLetter
from workflows import engine, permissions, rerun, runs, stop_flags
from workflows.models import Execution, TaskRun
from workflows.services import Conflict, NotFound, permission_require

log = structlog.get_logger(__name__)


def dead_letter_retry(*, dead_letter_id: int, user, note: str = "") -> DeadLetter:
    """Re-queue the task with fresh attempts; its execution runs again and the DAG continues."""
    with transaction.atomic():
        run, letter = _lock_open_letter(dead_letter_id, user)
        task_failed = TaskRun.objects.filter(pk=letter.task_run_id, status=TaskRun.Status.FAILED).exists()
        # RUNNING happens when a sibling's dead letter from the same failure was retried first.
        if not task_failed or run.status not in {Execution.Status.FAILED, Execution.Status.RUNNING}:
            raise Conflict(
                f"execution is {run.status}; only a failed execution (or one resumed from another of "
                "its dead letters) can be resumed",
                code="execution_not_failed",
            )
        rerun.tasks_resume(run, TaskRun.objects.filter(pk=letter.task_run_id))
        _resolve(letter, DeadLetter.Status.RETRIED, user, note)
    log.info("dead_letter_retried", dead_letter_id=dead_letter_id, execution_id=str(run.id))
    return letter


def dead_letter_discard(*, dead_letter_id: int, user, note: str = "") -> DeadLetter:
    """Close the entry without running anything. If a sibling's retry had resumed the execution,
    this node can now never finish, so the execution fails again."""
    with transaction.atomic():
        run, letter = _lock_open_letter(dead_letter_id, user)
        still_failed = TaskRun.objects.filter(pk=letter.task_run_id, status=TaskRun.Status.FAILED).exists()
        if run.status == Execution.Status.RUNNING and still_failed:
            run.fail(
                letter.node_id, {"code": letter.code, "category": letter.category, "message": letter.message}
            )
            engine.finish_runs([run])  # FAILED, and marked for its stop flag (stop_flags.py)
            # As any failure: the resumed siblings still out there are dropped or stopped.
            stop_flags.sync_after_commit(run.id)
        _resolve(letter, DeadLetter.Status.DISCARDED, user, note)
    log.info("dead_letter_discarded", dead_letter_id=dead_letter_id)
    return letter


def _lock_open_letter(dead_letter_id: int, user) -> tuple[runs.Run, DeadLetter]:
    """Lock the letter's execution (first, like every writer of run state), then the letter.
    Triage takes the permission to change dead letters, whoever owns the execution."""
    permission_require(user, None, permissions.TRIAGE_DEAD_LETTERS, "retry or discard dead letters")
    execution_id = DeadLetter.objects.filter(pk=dead_letter_id).values_list("execution_id", flat=True).first()
    if execution_id is None:
        raise NotFound(f"no dead letter with id {dead_letter_id}")
    run = runs.lock_runs([execution_id])[str(execution_id)]
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
    if not letter.is_open:
        raise Conflict(f"dead letter is already {letter.status}", code="already_resolved")
    return run, letter


def _resolve(letter: DeadLetter, status: str, user, note: str) -> None:
    DeadLetter.objects.filter(pk=letter.pk).resolve(status=status, user=user, note=note)
    letter.refresh_from_db()
