"""Failed attempts: record each one, retry with backoff while the policy allows, otherwise fail
the node for good with a dead letter written in the same transaction."""

import json

from django.conf import settings
from django.utils import timezone

from dlq.models import DeadLetter, dead_letter_record
from resilience.retry import RetryPolicy
from workflows import statements
from workflows.dispatch import Dispatch, load_outputs, task_message
from workflows.messages import SCHEMA_VERSION, CompletionMessage, from_epoch
from workflows.models import TaskAttempt, TaskRun
from workflows.runs import Run
from workflows.templating import TemplateError


def handle_failures(
    failed: list[tuple[Run, CompletionMessage, tuple[int, dict]]], dispatch: Dispatch, *, now: float
) -> None:
    """Record each failed attempt; schedule a retry with backoff, or fail the node for good
    (dead letter, execution FAILED) when the error is permanent or the attempts are spent."""
    if not failed:
        return
    TaskAttempt.objects.bulk_create(
        [
            TaskAttempt(
                task_run_id=c.task_id,
                attempt=c.attempt,
                error=c.error or {},
                started_at=from_epoch(c.started_at),
                finished_at=from_epoch(c.finished_at),
                worker=c.worker[:200],
            )
            for _, c, _ in failed
        ],
        ignore_conflicts=True,
    )
    defaults = default_retry_policy()
    retries, letters = [], []
    for run, completion, (retry_base, config) in failed:
        node = run.dag.node_of(completion.node_id)
        policy = RetryPolicy.for_node(node.retry, defaults)
        error = completion.error or {"message": "unknown error"}
        used = completion.attempt - retry_base
        if run.deadline and now >= run.deadline:
            continue  # past the workflow's deadline: the reaper ends it TIMED_OUT, no retry
        if completion.exhausted or error.get("permanent") or policy.exhausted(used):
            run.node_failed(completion.node_id, error)
            letters.append((run, completion, config, error))
        else:
            # Never sooner than the downstream asked (a 429's Retry-After).
            wait = max(policy.delay(used), float(error.get("retry_after_seconds") or 0))
            retries.append((run, completion, config, now + wait))
    if retries:
        load_outputs((run, c.node_id) for run, c, _, _ in retries)
        queued = statements.queue_retries([(c.task_id, from_epoch(due)) for _, c, _, due in retries])
        dispatch.delayed.extend(
            (task_message(run, c.node_id, c.task_id, queued[c.task_id][0], config), due)
            for run, c, config, due in retries
        )
    for run, completion, config, error in letters:
        dead_letter(run, completion.node_id, completion.task_id, completion.attempt, config, error)


def dead_letter(run: Run, node_id: str, pk: int, attempt: int, config: dict | None, error: dict) -> None:
    """The DeadLetter row, in the transaction that fails the node; its event goes out after."""
    letter = dead_letter_record(
        task_run_id=pk,
        execution_id=run.id,
        node_id=node_id,
        handler=run.dag.node_of(node_id).handler,
        config=config,
        attempt=attempt,
        error=error,
    )
    run.dead_lettered(dead_letter_event(letter))


def dead_letter_event(letter: DeadLetter) -> dict:
    """The `workflow:dlq` stream entry for external tools."""
    body = {
        "dead_letter_id": letter.id,
        "execution_id": str(letter.execution_id),
        "node_id": letter.node_id,
        "handler": letter.handler,
        "attempt": letter.attempt,
        "category": letter.category,
        "code": letter.code,
        "message": letter.message[:1000],
    }
    return {"v": SCHEMA_VERSION, "body": json.dumps(body)}


def default_retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.RETRY_MAX_ATTEMPTS,
        backoff_base=settings.RETRY_BACKOFF_BASE,
        backoff_max=settings.RETRY_BACKOFF_MAX,
        jitter=settings.RETRY_JITTER,
    )


def fail_before_dispatch(run: Run, node_id: str, pk: int, exc: Exception) -> None:
    """A condition or template that cannot be evaluated fails its node; retrying cannot help."""
    error = {
        "code": exc.code if isinstance(exc, TemplateError) else "invalid_condition",
        "category": "validation",
        "message": str(exc),
        "permanent": True,
    }
    TaskRun.objects.filter(id=pk).update(
        status=TaskRun.Status.FAILED, error=error, finished_at=timezone.now()
    )
    run.node_failed(node_id, error)
    attempt = TaskRun.objects.values_list("attempt", flat=True).get(pk=pk)
    dead_letter(run, node_id, pk, attempt, run.dag.node_of(node_id).config, error)
