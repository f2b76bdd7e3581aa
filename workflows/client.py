"""Starting workflows from a Django project's own code, inside the caller's transaction.

    with transaction.atomic():
        order = Order.objects.create(...)
        client.submit(dag, name="fulfil", params={"order": order.pk}, owner=request.user)

The start is part of the caller's transaction: if it rolls back, no workflow or execution exists
and nothing reaches a stream; once it commits, the roots are published (and if the process dies
between the commit and the publish, the reaper publishes them from their QUEUED rows). Invalid
input raises `dag.DagError` (the DAG) or `services.ServiceError` (params, state, permissions), the
same errors the API answers 4xx with.
"""

from django.db import transaction

from workflows import services
from workflows.models import Execution, Workflow


def submit(
    dag: dict,
    *,
    name: str,
    params: dict | None = None,
    owner=None,
    description: str = "",
    timeout_seconds: int | None = None,
    start: bool = True,
) -> Execution:
    """Validate and store `dag` (`{"nodes": [...]}`, as the API takes it) as a workflow, and start
    an execution of it with `params` (a PENDING one with `start=False`)."""
    payload = {"name": name, "description": description, "dag": dag}
    if timeout_seconds is not None:
        payload["timeout_seconds"] = timeout_seconds
    with transaction.atomic():
        execution = services.workflow_submit(payload=payload, owner=owner)
        if start:
            execution = services.execution_trigger(execution=execution, params=params or {})
    return execution


def start(target: Execution | Workflow, *, params: dict | None = None, owner=None) -> Execution:
    """Trigger a PENDING execution, or start a new execution of a workflow (owned by `owner`, by
    default the workflow's owner)."""
    if isinstance(target, Workflow):
        return services.workflow_start(workflow=target, params=params or {}, owner=owner or target.owner)
    return services.execution_trigger(execution=target, params=params or {})
