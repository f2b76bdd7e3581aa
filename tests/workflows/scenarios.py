"""Executions in the states the page, admin and permission tests start from, made through the
services and the engine as the API and an orchestrator would make them."""

from django.db import transaction

from dlq.models import DeadLetter
from tests import reference_payloads
from workflows import engine, services
from workflows.messages import CompletionMessage
from workflows.models import Execution, TaskRun


def started(owner, name="complex_dag", params=None) -> Execution:
    execution = services.workflow_submit(payload=reference_payloads.load(name), owner=owner)
    return services.execution_trigger(execution=execution, params=params or {})


def fail_permanently(execution: Execution, node_id: str) -> DeadLetter:
    """The node fails for good, as a worker reporting a validation error would make it."""
    run = TaskRun.objects.get(execution=execution, node_id=node_id)
    failure = CompletionMessage(
        task_id=run.id,
        execution_id=str(execution.id),
        node_id=node_id,
        attempt=run.attempt,
        ok=False,
        error={
            "category": "validation",
            "code": "bad_input",
            "message": "broken input",
            "permanent": True,
            "traceback": "Traceback (most recent call last):\n  ValueError: broken input",
        },
    )
    with transaction.atomic():
        engine.completions_apply([failure])
    return DeadLetter.objects.get(execution=execution, node_id=node_id)
