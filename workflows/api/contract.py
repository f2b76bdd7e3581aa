"""The shapes of the API's bodies that are not model rows, declared once for the OpenAPI schema.

The submitted DAG is validated by `workflows.dag` (cycles, dependencies, templates: more than a
JSON Schema can say), and the status and results answers are built by `selectors` as plain
dicts on the hot path. These serializers never run; they are the contract those bodies keep,
and the schemathesis tests (tests/workflows/test_api_contract.py) check every answer against it.
"""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from workflows.dag import MAX_DESCRIPTION_LENGTH, MAX_TIMEOUT_SECONDS
from workflows.models import Execution, TaskRun

CIRCUIT_STATES = ["closed", "open", "half_open"]
SECONDS = {"min_value": 0, "max_value": MAX_TIMEOUT_SECONDS}


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: `not_found`, `cycle`, `not_pending`...")
    message = serializers.CharField(help_text="For people: what is wrong and what to do.")
    details = serializers.DictField(help_text="Where: the node, field or limit concerned; may be empty.")


@extend_schema_serializer(component_name="Error")
class ErrorBody(serializers.Serializer):
    """Every error the API gives, whatever its status."""

    error = ErrorDetail()


class RetryPolicy(serializers.Serializer):
    """A node's retry policy; each key defaults to the operator's RETRY_* setting."""

    max_attempts = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="Attempts in all, the first included (at most DAG_MAX_RETRY_ATTEMPTS).",
    )
    backoff_base = serializers.FloatField(
        required=False, help_text="Seconds before the first retry.", **SECONDS
    )
    backoff_max = serializers.FloatField(
        required=False, help_text="Longest wait between attempts.", **SECONDS
    )
    jitter = serializers.FloatField(required=False, help_text="Random share added to each wait.", **SECONDS)


class Node(serializers.Serializer):
    id = serializers.RegexField(
        r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$",
        help_text="Unique in the workflow; `params` and `secrets` are reserved.",
    )
    handler = serializers.CharField(
        help_text="A registered handler (see GET /api/v1/admin/circuits and docs/handlers.md), or "
        "`workflow` to run another workflow as a sub-workflow."
    )
    dependencies = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Ids of the nodes that must finish first; the graph must be acyclic.",
    )
    config = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="The handler's input. String values may hold templates: `{{ params.x }}`, "
        "`{{ upstream_node.field }}`, `{{ secrets.NAME }}`; `{{ item }}` and `{{ index }}` "
        "in a mapped node.",
    )
    condition = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Run only when true, else SKIPPED: e.g. `{{ check.ok }} == true and {{ params.go }}`.",
    )
    retry = RetryPolicy(required=False, allow_null=True)
    timeout_seconds = serializers.FloatField(
        required=False, allow_null=True, help_text="Greater than 0; one attempt's time limit.", **SECONDS
    )
    map_over = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="One template naming a list (`{{ fetch.items }}` or `{{ params.items }}`): the "
        "node runs once per item, at most MAP_MAX_ITEMS.",
    )


class DagNodes(serializers.Serializer):
    nodes = serializers.ListField(child=Node(), min_length=1)


class WorkflowDefinition(serializers.Serializer):
    """A workflow as submitted: its nodes with their handlers, dependencies and configs."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True)
    timeout_seconds = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Greater than 0; the whole execution's time limit.",
        **SECONDS,
    )
    strict_templates = serializers.BooleanField(
        required=False,
        help_text="A template naming a missing field fails the node instead of rendering empty.",
    )
    dag = DagNodes()


class RunInput(serializers.Serializer):
    """Either a definition to submit or the id of a stored workflow, and the params to run it with."""

    workflow = WorkflowDefinition(required=False)
    workflow_id = serializers.UUIDField(required=False)
    params = serializers.DictField(required=False)


class ExecutionChange(serializers.Serializer):
    """What trigger, re-run and cancel answer: the execution's status after the change."""

    execution_id = serializers.UUIDField()
    status = serializers.ChoiceField(Execution.Status.choices)
    message = serializers.CharField()

    @staticmethod
    def of(execution: Execution, message: str) -> dict:
        """The answer, built as a plain dict (trigger is a hot path; the serializer never runs)."""
        return {"execution_id": str(execution.id), "status": execution.status, "message": message}


class ExecutionStarted(ExecutionChange):
    """A new execution, started: a run, or a re-trigger."""

    workflow_id = serializers.UUIDField()

    @staticmethod
    def of(execution: Execution, message: str) -> dict:
        return {**ExecutionChange.of(execution, message), "workflow_id": str(execution.workflow_id)}


class Progress(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class RunningTask(serializers.Serializer):
    started_at = serializers.DateTimeField(help_text="When the worker claimed it.")
    worker = serializers.CharField()


class ParentTask(serializers.Serializer):
    execution_id = serializers.UUIDField()
    node_id = serializers.CharField()


class ChildExecution(serializers.Serializer):
    node_id = serializers.CharField()
    execution_id = serializers.UUIDField()
    status = serializers.ChoiceField(Execution.Status.choices)


class ExecutionStatus(serializers.Serializer):
    """An execution and every node's state; `node_statuses` keys are node ids (`node[3]` for an
    item of a mapped node)."""

    execution_id = serializers.UUIDField()
    workflow_id = serializers.UUIDField()
    workflow_name = serializers.CharField()
    status = serializers.ChoiceField(Execution.Status.choices)
    node_statuses = serializers.DictField(child=serializers.ChoiceField(TaskRun.Status.choices))
    progress = Progress()
    running = serializers.DictField(child=RunningTask(), help_text="The nodes a worker is running now.")
    params = serializers.DictField(allow_null=True)
    error = serializers.DictField(allow_null=True, help_text="Why it failed, timed out or was cancelled.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    parent = ParentTask(allow_null=True, help_text="The sub-workflow node that started it, if one did.")
    children = ChildExecution(many=True, help_text="The executions its sub-workflow nodes started.")


class ExecutionResults(serializers.Serializer):
    execution_id = serializers.UUIDField()
    workflow_id = serializers.UUIDField()
    status = serializers.ChoiceField(Execution.Status.choices)
    outputs = serializers.DictField(
        child=serializers.JSONField(), help_text="Each completed node's output, by node id."
    )


class Circuit(serializers.Serializer):
    state = serializers.ChoiceField(CIRCUIT_STATES)
    consecutive_failures = serializers.IntegerField()
    retry_after = serializers.FloatField(
        allow_null=True, help_text="Unix time an open circuit lets a call try."
    )


class Circuits(serializers.Serializer):
    circuits = serializers.DictField(child=Circuit(), help_text="By handler (or handler:host).")
