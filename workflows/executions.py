"""A new execution and one PENDING task run per node, written in one statement on PostgreSQL:
for a submit (after its new workflow), a new execution of a stored workflow, and a
sub-workflow's child execution."""

from django.db import connection

from workflows import statements
from workflows.dag import Dag
from workflows.models import Execution, TaskRun, Workflow


def execution_insert(
    workflow: Workflow,
    dag: Dag,
    *,
    cap: int,
    owner=None,
    owner_id: int | None = None,
    new_workflow: bool = False,
    parent_task_id: int | None = None,
) -> Execution | None:
    """Write a new PENDING execution of `workflow` (and the workflow first, when `new_workflow`).
    None, and nothing written, when `owner` already has `cap` executions pending or running (0:
    no cap): a guard against runaways, not a quota to the unit (submits racing at the cap may
    all pass). The owner is a user (`owner`), or only known by id (`owner_id`)."""
    execution = Execution(
        workflow=workflow,
        total_tasks=len(dag.nodes),
        unfinished_tasks=len(dag.nodes),
        parent_task_id=parent_task_id,
    )
    if owner is not None:
        execution.owner = owner
    else:
        execution.owner_id = owner_id
    instances = [workflow, execution] if new_workflow else [execution]
    written = statements.insert_new(
        instances,
        owner_id=execution.owner_id,
        cap=cap,
        task_runs=[
            (execution.id, node.id, node.handler, TaskRun.Status.PENDING, 0, 0, len(node.dependencies), "")
            for node in dag.nodes.values()
        ],
    )
    if not written:
        return None
    for instance in instances:
        instance._state.adding, instance._state.db = False, connection.alias
    return execution
