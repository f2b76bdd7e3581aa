"""Reads for the API and dashboard: visibility by owner, status and results of an execution."""

import uuid
from collections import Counter
from datetime import UTC, datetime

import redis
import structlog
from django.conf import settings
from django.db.models import QuerySet

from workflows import permissions, statements
from workflows.bulk_sql import from_db_datetime, from_db_json
from workflows.dag_cache import dag_for
from workflows.models import Execution, TaskRun, Workflow
from workflows.streams import get_streams

QUEUED = TaskRun.Status.QUEUED
log = structlog.get_logger(__name__)


def may_see(user, owner_id) -> bool:
    """The visibility rule, for raw queries: owners see theirs, holders of the view permission
    see everything."""
    return permissions.may_act(user, owner_id, permissions.VIEW_ALL_EXECUTIONS)


def executions_visible_to(user) -> QuerySet[Execution]:
    """Every execution for holders of the view permission; other users see their own."""
    queryset = Execution.objects.select_related("workflow")
    return queryset if user.has_perm(permissions.VIEW_ALL_EXECUTIONS) else queryset.filter(owner=user)


def workflows_visible_to(user) -> QuerySet[Workflow]:
    queryset = Workflow.objects.all()
    return queryset if user.has_perm(permissions.VIEW_ALL_WORKFLOWS) else queryset.filter(owner=user)


def execution_for(user, execution_id: uuid.UUID) -> Execution | None:
    return executions_visible_to(user).filter(pk=execution_id).first()


def workflow_for(user, workflow_id: uuid.UUID) -> Workflow | None:
    return workflows_visible_to(user).filter(pk=workflow_id).first()


def execution_status_for(user, execution_id: uuid.UUID) -> dict | None:
    """Status with every node's state and progress counts; None if the user may not see it.

    The endpoint clients poll: one indexed query in raw SQL, the node states aggregated as JSON
    by the database (building it with the ORM cost more than running it)."""
    row = statements.execution_status_row(execution_id)
    if row is None or not may_see(user, row[10]):
        return None
    nodes = from_db_json(row[11])
    node_statuses = {node_id: node_status for node_id, node_status, *_ in nodes}
    queued = [
        (node_id, (pk, attempt)) for node_id, node_status, pk, attempt in nodes if node_status == QUEUED
    ]
    running = _running_now(queued)
    for node_id in running:
        node_statuses[node_id] = TaskRun.Status.RUNNING
    workflow_id, name, status, params, error, total, created, started, finished, deadline = row[:10]
    parent_execution, parent_node = row[12:14]
    counts = Counter(node_statuses.values())
    return {
        "execution_id": str(execution_id),
        "workflow_id": str(uuid.UUID(str(workflow_id))),
        "workflow_name": name,
        "status": status,
        "node_statuses": node_statuses,
        "progress": {
            "total": total,
            **{state.lower(): counts[state] for state in TaskRun.Status.values},
        },
        "running": {
            node_id: {"started_at": started_at, "worker": worker}
            for node_id, (worker, started_at) in running.items()
        },
        "params": from_db_json(params),
        "error": from_db_json(error),
        "created_at": from_db_datetime(created),
        "started_at": from_db_datetime(started),
        "finished_at": from_db_datetime(finished),
        "deadline": from_db_datetime(deadline),
        "parent": {"execution_id": str(uuid.UUID(str(parent_execution))), "node_id": parent_node}
        if parent_execution
        else None,
        "children": sub_executions(execution_id)
        if dag_for(uuid.UUID(str(workflow_id))).has_subworkflows
        else [],
    }


def sub_executions(execution_id: uuid.UUID) -> list[dict]:
    """The child executions its sub-workflow nodes started, oldest first (a node re-run starts
    another)."""
    return [
        {"node_id": node_id, "execution_id": str(child), "status": status}
        for child, node_id, status in Execution.objects.filter(parent_task__execution_id=execution_id)
        .order_by("created_at")
        .values_list("id", "parent_task__node_id", "status")
    ]


def execution_status_waiting(user, execution_id: uuid.UUID, wait_seconds: float) -> dict | None:
    """Long poll: the status once the execution has ended, or after `wait_seconds` at most,
    whichever comes first. The wait is one blocking Redis read woken by whoever ends it, so a
    client learns of the end at once without polling the database in a loop."""
    if wait_seconds > 0:
        row = statements.execution_status_and_owner(execution_id)
        if row is None or not may_see(user, row[1]):
            return None
        if row[0] not in Execution.TERMINAL:
            get_streams().wait_finished(str(execution_id), min(wait_seconds, settings.LONG_POLL_MAX_SECONDS))
    return execution_status_for(user, execution_id)


def execution_results(execution: Execution) -> dict:
    """Outputs of every completed node."""
    outputs = dict(
        TaskRun.objects.filter(execution_id=execution.id, status=TaskRun.Status.COMPLETED)
        .order_by("id")
        .values_list("node_id", "output")
    )
    return {
        "execution_id": str(execution.id),
        "workflow_id": str(execution.workflow_id),
        "status": execution.status,
        "outputs": outputs,
    }


def task_runs_of(execution: Execution) -> QuerySet[TaskRun]:
    """Every task with the history of its failed attempts."""
    return (
        TaskRun.objects.filter(execution_id=execution.id).order_by("id").prefetch_related("failed_attempts")
    )


def live_task_runs(execution: Execution) -> list[TaskRun]:
    """Every task as `task_runs_of`, with RUNNING shown live (see `with_live_status`)."""
    return with_live_status(list(task_runs_of(execution)))


def with_live_status(runs: list[TaskRun]) -> list[TaskRun]:
    """Runs a worker is executing right now are QUEUED in PostgreSQL (workers never write it):
    these instances get status RUNNING, `started_at` and `worker` from the worker's claim in
    Redis. Nothing is saved; the orchestrator records the real times from the completion."""
    queued = {run.node_id: run for run in runs if run.status == QUEUED}
    running = _running_now([(node_id, (run.pk, run.attempt)) for node_id, run in queued.items()])
    for node_id, (worker, started_at) in running.items():
        run = queued[node_id]
        run.status, run.started_at, run.worker = TaskRun.Status.RUNNING, started_at, worker
    return runs


def _running_now(queued: list[tuple[str, tuple[int, int]]]) -> dict[str, tuple[str, datetime]]:
    """{node id: (worker, started at)} for the queued deliveries a worker holds a claim on."""
    if not queued:
        return {}
    try:
        claims = get_streams().running_claims([delivery for _, delivery in queued])
    except redis.RedisError as exc:  # Redis down: the database's view, QUEUED, is still true
        log.warning("running_state_unavailable", error=f"{exc.__class__.__name__}: {exc}")
        return {}
    return {
        node_id: (claim[0], datetime.fromtimestamp(claim[1], UTC))
        for (node_id, _), claim in zip(queued, claims, strict=True)
        if claim is not None
    }
