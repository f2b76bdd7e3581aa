"""Reads for the API and dashboard: visibility by owner, status and results of an execution."""

import uuid
from collections import Counter

from django.db import connection
from django.db.models import QuerySet

from workflows.bulk_sql import db_uuid, from_db_datetime, from_db_json, hot_cursor
from workflows.models import Execution, TaskRun, Workflow
from workflows.streams import get_streams

MAX_WAIT_SECONDS = 30.0


def may_see(user, owner_id) -> bool:
    """The visibility rule, for raw queries: staff see everything, others what they own."""
    return user.is_staff or owner_id == user.pk


def executions_visible_to(user) -> QuerySet[Execution]:
    """Staff see every execution; other users see their own."""
    queryset = Execution.objects.select_related("workflow")
    return queryset if user.is_staff else queryset.filter(owner=user)


def workflows_visible_to(user) -> QuerySet[Workflow]:
    queryset = Workflow.objects.all()
    return queryset if user.is_staff else queryset.filter(owner=user)


def execution_for(user, execution_id: uuid.UUID) -> Execution | None:
    return executions_visible_to(user).filter(pk=execution_id).first()


def execution_status_for(user, execution_id: uuid.UUID) -> dict | None:
    """Status with every node's state and progress counts; None if the user may not see it.

    The endpoint clients poll: one indexed query in raw SQL, the node states aggregated as JSON
    by the database (building it with the ORM cost more than running it)."""
    execution, workflow, taskrun = Execution._meta.db_table, Workflow._meta.db_table, TaskRun._meta.db_table
    if connection.vendor == "postgresql":
        nodes = (
            "(SELECT coalesce(json_agg(json_build_array(t.node_id, t.status) ORDER BY t.id), '[]'::json) "  # noqa: S608
            f"FROM {taskrun} t WHERE t.execution_id = e.id)"
        )
    else:
        nodes = (
            "(SELECT json_group_array(json_array(t.node_id, t.status)) FROM "  # noqa: S608
            f"(SELECT node_id, status FROM {taskrun} WHERE execution_id = e.id ORDER BY id) t)"
        )
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT e.workflow_id, w.name, e.status, e.params, e.error, e.total_tasks, e.created_at, "  # noqa: S608
            f"e.started_at, e.finished_at, e.deadline, e.owner_id, {nodes} FROM {execution} e "
            f"JOIN {workflow} w ON w.id = e.workflow_id WHERE e.id = %s",
            [db_uuid(execution_id)],
        )
        row = cursor.fetchone()
    if row is None or not may_see(user, row[10]):
        return None
    node_statuses = dict(from_db_json(row[11]))
    workflow_id, name, status, params, error, total, created, started, finished, deadline, *_ = row
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
        "params": from_db_json(params),
        "error": from_db_json(error),
        "created_at": from_db_datetime(created),
        "started_at": from_db_datetime(started),
        "finished_at": from_db_datetime(finished),
        "deadline": from_db_datetime(deadline),
    }


def execution_status_waiting(user, execution_id: uuid.UUID, wait_seconds: float) -> dict | None:
    """Long poll: the status once the execution has ended, or after `wait_seconds` at most,
    whichever comes first. The wait is one blocking Redis read woken by whoever ends it, so a
    client learns of the end at once without polling the database in a loop."""
    if wait_seconds > 0:
        with hot_cursor() as cursor:
            cursor.execute(
                f"SELECT status, owner_id FROM {Execution._meta.db_table} WHERE id = %s",  # noqa: S608
                [db_uuid(execution_id)],
            )
            row = cursor.fetchone()
        if row is None or not may_see(user, row[1]):
            return None
        if row[0] not in Execution.TERMINAL:
            get_streams().wait_finished(str(execution_id), min(wait_seconds, MAX_WAIT_SECONDS))
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
