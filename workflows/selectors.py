"""Reads for the API and dashboard: visibility by owner, status and results of an execution."""

import uuid
from collections import Counter

from django.db.models import QuerySet

from workflows.models import Execution, TaskRun, Workflow


def executions_visible_to(user) -> QuerySet[Execution]:
    """Staff see every execution; other users see their own."""
    queryset = Execution.objects.select_related("workflow")
    return queryset if user.is_staff else queryset.filter(owner=user)


def workflows_visible_to(user) -> QuerySet[Workflow]:
    queryset = Workflow.objects.all()
    return queryset if user.is_staff else queryset.filter(owner=user)


def execution_for(user, execution_id: uuid.UUID) -> Execution | None:
    return executions_visible_to(user).filter(pk=execution_id).first()


def execution_status(execution: Execution) -> dict:
    """Status with every node's state and progress counts, from one indexed query."""
    node_statuses = dict(
        TaskRun.objects.filter(execution_id=execution.id).order_by("id").values_list("node_id", "status")
    )
    counts = Counter(node_statuses.values())
    return {
        "execution_id": str(execution.id),
        "workflow_id": str(execution.workflow_id),
        "workflow_name": execution.workflow.name,
        "status": execution.status,
        "node_statuses": node_statuses,
        "progress": {
            "total": execution.total_tasks,
            "completed": counts[TaskRun.Status.COMPLETED],
            "skipped": counts[TaskRun.Status.SKIPPED],
            "failed": counts[TaskRun.Status.FAILED],
            "cancelled": counts[TaskRun.Status.CANCELLED],
            "queued": counts[TaskRun.Status.QUEUED],
            "running": counts[TaskRun.Status.RUNNING],
            "pending": counts[TaskRun.Status.PENDING],
        },
        "params": execution.params,
        "error": execution.error,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "deadline": execution.deadline,
    }


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
    return TaskRun.objects.filter(execution_id=execution.id).order_by("id")
