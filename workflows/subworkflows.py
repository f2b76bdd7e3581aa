"""Sub-workflows: a node with the `workflow` handler runs another stored workflow as a child
execution. The engine runs such a node itself, never a worker. In the transaction that finds it
ready, the node becomes RUNNING and its child is created (owned by the parent's owner, linked by
`Execution.parent_task`) and triggered with the params of the node's resolved config.

When the child ends, the node's completion goes on the completions stream after that commit, as a
worker's would. The orchestrator then records it like any outcome, fenced by attempt:
- a COMPLETED child gives the node `{"execution_id", "status", "outputs"}`, the child's outputs by
  node;
- any other end fails the node for good.

A completion lost to a crash is published again by the reaper. Cancelling, timing out or failing
the parent stops its live children (`engine.execution_stop`)."""

import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from workflows import permissions, statements
from workflows.dag import SUBWORKFLOW
from workflows.dag_cache import dag_for
from workflows.executions import execution_insert
from workflows.failures import fail_before_dispatch
from workflows.messages import CompletionMessage
from workflows.models import Execution, TaskRun, Workflow
from workflows.runs import Run
from workflows.streams import get_streams
from workflows.templating import TemplateError, json_size

LIVE = (Execution.Status.PENDING, Execution.Status.RUNNING)


class SubworkflowError(TemplateError):
    """The node cannot start its child (unknown workflow, too deep): permanent."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def spawn(
    ready: list[tuple[Run, str, int, dict]], now: datetime
) -> list[tuple[Execution, dict, datetime | None]]:
    """Start the children of ready sub-workflow nodes (run, node id, task id, resolved config):
    the nodes become RUNNING and their children are created. Returns (child, params, deadline)
    for the caller to trigger in this transaction."""
    children, started = [], []
    for run, node_id, pk, config in ready:
        try:
            workflow = _workflow(config.get("workflow"), run.owner_id)
            params = _params(config.get("params"))
            _check_depth(run)
        except SubworkflowError as exc:
            fail_before_dispatch(run, node_id, pk, exc)
            continue
        child = execution_insert(
            workflow, dag_for(workflow.id), owner_id=run.owner_id, cap=0, parent_task_id=pk
        )
        timeout = workflow.timeout_seconds
        children.append((child, params, now + timedelta(seconds=timeout) if timeout else None))
        started.append((pk, 0, config, now))
    statements.start_engine_run(started)
    return children


def _workflow(reference, owner_id: int | None) -> Workflow:
    """The workflow a node names, by id or by name (the owner's latest of that name)."""
    if not isinstance(reference, str) or not reference:
        raise SubworkflowError(f"'workflow' must name a workflow, got {reference!r}", "invalid_config")
    try:
        found = Workflow.objects.filter(pk=uuid.UUID(reference)).first()
    except ValueError:
        found = Workflow.objects.filter(name=reference, owner_id=owner_id).order_by("-created_at").first()
    if found is None or not _may_run(owner_id, found):
        raise SubworkflowError(
            f"no workflow {reference!r} that this execution's owner may run", "workflow_not_found"
        )
    return found


def _may_run(owner_id: int | None, workflow: Workflow) -> bool:
    if owner_id is None or workflow.owner_id == owner_id:
        return True
    owner = get_user_model().objects.filter(pk=owner_id).first()
    return owner is not None and permissions.may_act(owner, workflow.owner_id, permissions.RUN_ANY_EXECUTION)


def _params(params) -> dict:
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise SubworkflowError(
            f"'params' must resolve to an object, got {type(params).__name__}", "invalid_config"
        )
    if json_size(params) > settings.PARAMS_MAX_BYTES:
        raise SubworkflowError(
            f"'params' is larger than PARAMS_MAX_BYTES ({settings.PARAMS_MAX_BYTES})", "params_too_large"
        )
    return params


def _check_depth(run: Run) -> None:
    """A child may not be nested deeper than SUBWORKFLOW_MAX_DEPTH (a workflow running itself)."""
    depth, parent_task = 1, run.parent_task_id
    while parent_task is not None:
        depth += 1
        if depth > settings.SUBWORKFLOW_MAX_DEPTH:
            raise SubworkflowError(
                f"sub-workflows nest deeper than SUBWORKFLOW_MAX_DEPTH ({settings.SUBWORKFLOW_MAX_DEPTH})",
                "subworkflow_too_deep",
            )
        parent_task = (
            Execution.objects.filter(pk=TaskRun.objects.filter(pk=parent_task).values("execution_id")[:1])
            .values_list("parent_task_id", flat=True)
            .first()
        )


def children_ended(ended: list[tuple[uuid.UUID, int, str, dict | None]]) -> None:
    """Child executions that ended in this transaction (id, parent task id, status, error): after
    commit, their parent nodes' completions go on the completions stream."""
    if not ended:
        return
    completions = completions_for(ended)
    streams = get_streams()
    transaction.on_commit(lambda: streams.publish_engine_completions(completions), robust=True)


def completions_for(ended: list[tuple[uuid.UUID, int, str, dict | None]]) -> list[CompletionMessage]:
    """The completions of the parent nodes of ended children (id, parent task id, status, error)."""
    parents = {
        pk: (execution_id, node_id, attempt, workflow_id)
        for pk, execution_id, node_id, attempt, workflow_id in TaskRun.objects.filter(
            id__in=[parent for _, parent, _, _ in ended]
        ).values_list("id", "execution_id", "node_id", "attempt", "execution__workflow_id")
    }
    outputs: dict[str, dict] = {}
    completed = [child for child, _, status, _ in ended if status == Execution.Status.COMPLETED]
    for execution_id, node_id, output in TaskRun.objects.filter(
        execution_id__in=completed, status=TaskRun.Status.COMPLETED
    ).values_list("execution_id", "node_id", "output"):
        outputs.setdefault(str(execution_id), {})[node_id] = output
    now = time.time()
    completions = []
    for child, parent, status, error in ended:
        if parent not in parents:
            continue  # the parent's execution was deleted
        execution_id, node_id, attempt, workflow_id = parents[parent]
        ok, output, failure = _outcome(str(child), status, error, outputs.get(str(child), {}))
        completions.append(
            CompletionMessage(
                task_id=parent,
                execution_id=str(execution_id),
                node_id=node_id,
                attempt=attempt,
                ok=ok,
                output=output,
                error=failure,
                finished_at=now,
                worker=SUBWORKFLOW,
                workflow_id=str(workflow_id),
            )
        )
    return completions


def _outcome(
    child: str, status: str, error: dict | None, outputs: dict
) -> tuple[bool, dict | None, dict | None]:
    """(ok, output, error) of a node whose child ended with `status`."""
    if status == Execution.Status.COMPLETED:
        output = {"execution_id": child, "status": status, "outputs": outputs}
        if json_size(output) <= settings.OUTPUT_MAX_BYTES:
            return True, output, None
        message = f"the outputs of sub-workflow execution {child} are larger than OUTPUT_MAX_BYTES"
        return False, None, _failure("output_too_large", message, child)
    reason = (error or {}).get("message", "")
    message = f"sub-workflow execution {child} ended {status}" + (f": {reason}" if reason else "")
    return False, None, _failure(f"child_{status.lower()}", message, child)


def _failure(code: str, message: str, child: str) -> dict:
    return {
        "code": code,
        "category": "handler",
        "message": message,
        "permanent": True,
        "child_execution_id": child,
    }


def live_children(execution_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The PENDING or RUNNING children of these executions' sub-workflow nodes."""
    return list(
        Execution.objects.filter(parent_task__execution_id__in=execution_ids, status__in=LIVE).values_list(
            "id", flat=True
        )
    )


def lost_completions(older_than: datetime) -> list[CompletionMessage]:
    """Sub-workflow nodes still RUNNING in a RUNNING execution whose latest child ended before
    `older_than`: the completion published after that child's end was lost (a crash between the
    commit and the publish). Built again; a duplicate is fenced off by the orchestrator."""
    waiting = TaskRun.objects.filter(
        status=TaskRun.Status.RUNNING, handler=SUBWORKFLOW, execution__status=Execution.Status.RUNNING
    ).values_list("id", flat=True)
    latest: dict[int, tuple] = {}
    for child, parent, status, error, finished in (
        Execution.objects.filter(parent_task__in=list(waiting))
        .values_list("id", "parent_task_id", "status", "error", "finished_at")
        .order_by("created_at")
    ):
        latest[parent] = (child, parent, status, error, finished)
    ended = [
        (child, parent, status, error)
        for child, parent, status, error, finished in latest.values()
        if status not in LIVE and finished is not None and finished < older_than
    ]
    return completions_for(ended) if ended else []
