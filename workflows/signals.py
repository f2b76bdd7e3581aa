"""Django signals a project can receive when work ends: `execution_finished` and
`task_finished`, sent once the transaction that made the change has committed (never for one
that rolled back), in the process that made it: an orchestrator for most, the reaper for a
timeout, an API process for a cancel or a trigger whose roots were all skipped. Receivers run on
that process's hot path: keep them quick, and hand slow work to a queue. With no receiver
connected nothing is collected or scheduled."""

from collections.abc import Iterable

import structlog
from django.db import transaction
from django.dispatch import Signal

from workflows.models import Execution, TaskRun

log = structlog.get_logger(__name__)

# Sent with execution_id, workflow_id and status (COMPLETED, FAILED, CANCELLED or TIMED_OUT).
execution_finished = Signal()
# Sent with execution_id, workflow_id, node_id and status (COMPLETED, FAILED for good, or
# SKIPPED). A failed attempt that will be retried is not an end; the tasks an execution's end
# cancels are announced by its `execution_finished`.
task_finished = Signal()


def send_after_commit(runs: Iterable) -> None:
    """After commit, `task_finished` for each task the runs (`workflows.runs.Run`) ended in this
    transaction and `execution_finished` for each run that ended."""
    tasks, executions = task_finished.has_listeners(), execution_finished.has_listeners()
    if not (tasks or executions):
        return
    events = []
    for run in runs:
        ids = {"execution_id": str(run.id), "workflow_id": run.workflow_id}
        if tasks:
            events += [(task_finished, {**ids, "node_id": n, "status": s}) for n, s in run.ended_tasks]
        if executions and run.ended_now:
            events.append((execution_finished, {**ids, "status": run.status}))
    if events:
        transaction.on_commit(lambda: _send(events))


def execution_stopped(execution_id: str, workflow_id: str, status: str) -> None:
    """After commit, `execution_finished` for an execution cancelled or timed out."""
    if execution_finished.has_listeners():
        event = {"execution_id": execution_id, "workflow_id": workflow_id, "status": status}
        transaction.on_commit(lambda: _send([(execution_finished, event)]))


def _send(events: list[tuple[Signal, dict]]) -> None:
    for signal, kwargs in events:
        sender = TaskRun if signal is task_finished else Execution
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                log.error("signal_receiver_failed", receiver=repr(receiver), error=repr(result), **kwargs)
