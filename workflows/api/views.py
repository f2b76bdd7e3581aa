"""REST API: the seed-compatible /workflow endpoints plus listing of workflows and executions."""

import uuid

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows import rerun, selectors, services
from workflows.api import contract
from workflows.api.idempotency import idempotent
from workflows.api.long_poll import LongPollLimit, long_poll_gate
from workflows.api.openapi import conflict
from workflows.api.serializers import (
    ExecutionOutput,
    SubmitOutput,
    TaskRunOutput,
    TriggerInput,
    WorkflowListOutput,
    WorkflowOutput,
)
from workflows.api.throttling import SUBMIT, TRIGGER
from workflows.models import Execution
from workflows.streams import get_streams

EXECUTION_ID = OpenApiParameter("execution_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
WAIT = OpenApiParameter(
    "wait",
    {"type": "number", "minimum": 0, "maximum": settings.LONG_POLL_MAX_SECONDS},
    description="Long poll: answer as soon as the execution has ended, or after this many seconds "
    f"(at most LONG_POLL_MAX_SECONDS, {settings.LONG_POLL_MAX_SECONDS:g} here), whichever comes first. "
    "429 with Retry-After when too many long polls are already waiting "
    "(LONG_POLL_MAX_PER_PROCESS, LONG_POLL_MAX_PER_USER).",
)
# A real workflow, so that the schema's examples (and schemathesis's stateful phase) reach real
# executions: two independent steps joined by a third that reads their outputs.
DAG_EXAMPLE = {
    "name": "greeting",
    "description": "Two inputs merged into one output.",
    "dag": {
        "nodes": [
            {"id": "hello", "handler": "transform", "config": {"output": {"word": "hello"}}},
            {"id": "world", "handler": "transform", "config": {"output": {"word": "{{ params.who }}"}}},
            {
                "id": "greet",
                "handler": "transform",
                "dependencies": ["hello", "world"],
                "config": {"output": {"text": "{{ hello.word }}, {{ world.word }}"}},
                "retry": {"max_attempts": 3, "backoff_base": 1},
                "timeout_seconds": 30,
            },
        ]
    },
}


def visible_execution(request: Request, raw_id: str) -> Execution:
    execution = selectors.execution_for(request.user, services.parse_id(raw_id))
    if execution is None:
        raise services.NotFound(f"no execution with id {raw_id!r}")
    return execution


class WorkflowSubmitView(APIView):
    """POST a workflow definition: validated, stored, and a PENDING execution created."""

    throttle_scope = SUBMIT

    @extend_schema(
        operation_id="workflow_submit",
        request=contract.WorkflowDefinition,
        responses={201: SubmitOutput},
        examples=[OpenApiExample("A three-node workflow", value=DAG_EXAMPLE, request_only=True)],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        execution = services.workflow_submit(payload=request.data, owner=request.user)
        body = SubmitOutput.of(execution, "Workflow submitted; trigger the execution to run it.")
        return Response(body, status=status.HTTP_201_CREATED)


class WorkflowTriggerView(APIView):
    """POST to start a PENDING execution, with optional `params` for `{{ params.x }}` templates."""

    throttle_scope = TRIGGER

    @extend_schema(
        operation_id="execution_trigger",
        parameters=[EXECUTION_ID],
        request=TriggerInput,
        responses={
            202: contract.ExecutionChange,
            409: conflict("The execution is not PENDING (`not_pending`)."),
        },
        examples=[OpenApiExample("Params", value={"params": {"who": "world"}}, request_only=True)],
    )
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        execution = services.execution_to_trigger(viewer=request.user, raw_id=execution_id)
        data = TriggerInput(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        execution = services.execution_trigger(execution=execution, params=data.validated_data["params"])
        body = contract.ExecutionChange.of(execution, "Execution started.")
        return Response(body, status=status.HTTP_202_ACCEPTED)


class WorkflowRunView(APIView):
    """POST a definition (or a stored workflow's id) with params: submitted and triggered at once.
    With `?wait=S`, the answer is the final status if the execution ends within S seconds."""

    throttle_scope = SUBMIT

    @extend_schema(
        operation_id="workflow_run",
        parameters=[WAIT],
        request=contract.RunInput,
        responses={
            200: OpenApiResponse(contract.ExecutionStatus, "It ended within `wait`: its final status."),
            202: OpenApiResponse(contract.ExecutionStarted, "Started; not ended (yet, or no `wait`)."),
            404: OpenApiResponse(
                contract.ErrorBody, "No stored workflow with this `workflow_id` that the caller may see."
            ),
        },
        examples=[
            OpenApiExample(
                "A definition and params",
                value={"workflow": DAG_EXAMPLE, "params": {"who": "world"}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        wait = _wait_seconds(request.query_params.get("wait"))
        started = self._start(request)
        if not wait or started.status_code != status.HTTP_202_ACCEPTED:
            return started
        try:
            with long_poll_gate().slot(request.user.pk):
                ended = selectors.execution_status_waiting(
                    request.user, uuid.UUID(started.data["execution_id"]), wait
                )
        except LongPollLimit:
            return started  # no slot to wait in: started all the same, the client polls
        if ended is None or ended["status"] not in Execution.TERMINAL:
            return started
        return Response(ended)

    @idempotent
    def _start(self, request: Request) -> Response:
        """The creating part: a retry under the same Idempotency-Key gets this answer again (and
        then waits on the same execution)."""
        execution = services.workflow_run(body=request.data, owner=request.user)
        return Response(
            contract.ExecutionStarted.of(execution, "Workflow started."), status=status.HTTP_202_ACCEPTED
        )


class ExecutionStatusView(APIView):
    """GET an execution's status and node states; DELETE cancels it."""

    long_polls = True  # a GET with ?wait= is throttled as `long_poll`, not `reads`

    @extend_schema(
        operation_id="execution_status",
        parameters=[EXECUTION_ID, WAIT],
        responses={200: contract.ExecutionStatus},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        wanted, wait = (
            services.parse_id(execution_id),
            _wait_seconds(request.query_params.get("wait")),
        )
        if wait:
            with long_poll_gate().slot(request.user.pk):
                status = selectors.execution_status_waiting(request.user, wanted, wait)
        else:
            status = selectors.execution_status_for(request.user, wanted)
        if status is None:
            raise services.NotFound(f"no execution with id {execution_id!r}")
        return Response(status)

    @extend_schema(
        operation_id="execution_cancel",
        description="Cancel the execution and every node of it that has not finished. The execution "
        "is kept, CANCELLED, and stays readable; re-run or re-trigger it to run it again.",
        parameters=[EXECUTION_ID],
        responses={
            200: contract.ExecutionChange,
            409: conflict("The execution has already ended (`already_finished`)."),
        },
    )
    def delete(self, request: Request, execution_id: str) -> Response:
        execution = services.execution_cancel(
            execution=visible_execution(request, execution_id), user=request.user
        )
        return Response(contract.ExecutionChange.of(execution, "Execution cancelled."))


def _wait_seconds(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= settings.LONG_POLL_MAX_SECONDS:  # also rejects nan
        raise services.ServiceError(
            f"wait must be a number of seconds from 0 to {settings.LONG_POLL_MAX_SECONDS:g}, not {raw!r}",
            code="invalid_wait",
        )
    return seconds


class ExecutionResultsView(APIView):
    """GET the outputs of every completed node."""

    @extend_schema(
        operation_id="execution_results",
        parameters=[EXECUTION_ID],
        responses={200: contract.ExecutionResults},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        return Response(selectors.execution_results(visible_execution(request, execution_id)))


@extend_schema_view(
    list=extend_schema(operation_id="executions_list"),
    retrieve=extend_schema(operation_id="execution_get", parameters=[ID]),
)
class ExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """Executions, newest first; filter with ?status= and ?workflow=."""

    serializer_class = ExecutionOutput
    lookup_value_regex = "[^/]+"

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(Execution.Status.values)),
            OpenApiParameter("workflow", OpenApiTypes.UUID),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = selectors.executions_visible_to(self.request.user)
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted.upper() not in Execution.Status.values:
                raise services.ServiceError(
                    f"unknown status {wanted!r}; use one of {list(Execution.Status.values)}"
                )
            queryset = queryset.filter(status=wanted.upper())
        workflow = self.request.query_params.get("workflow")
        if workflow is not None:
            queryset = queryset.filter(workflow_id=services.parse_filter_id(workflow, "workflow"))
        return queryset

    def get_object(self):
        return visible_execution(self.request, self.kwargs["pk"])

    @extend_schema(operation_id="execution_tasks", parameters=[ID], responses={200: TaskRunOutput(many=True)})
    @action(detail=True, methods=["get"])
    def tasks(self, request: Request, pk: str) -> Response:
        """Every task of the execution with its attempt, config, output, error and timings."""
        runs = selectors.task_runs_of(self.get_object())
        page = selectors.with_live_status(self.paginate_queryset(runs))
        return self.get_paginated_response(TaskRunOutput(page, many=True).data)


@extend_schema_view(
    list=extend_schema(operation_id="workflows_list"),
    retrieve=extend_schema(operation_id="workflow_get", parameters=[ID]),
)
class WorkflowViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored workflow definitions; POST .../executions starts another run of one."""

    lookup_value_regex = "[^/]+"
    throttle_scope = None  # set by the `executions` action (DRF takes only attributes the class has)

    def get_serializer_class(self):
        return WorkflowListOutput if self.action == "list" else WorkflowOutput

    def get_queryset(self):
        return selectors.workflows_visible_to(self.request.user)

    def get_object(self):
        workflow = selectors.workflow_for(self.request.user, services.parse_id(self.kwargs["pk"], "workflow"))
        if workflow is None:
            raise services.NotFound(f"no workflow with id {self.kwargs['pk']!r}")
        return workflow

    @extend_schema(
        operation_id="workflow_new_execution", parameters=[ID], request=None, responses={201: SubmitOutput}
    )
    @action(detail=True, methods=["post"], throttle_scope=SUBMIT)
    @idempotent
    def executions(self, request: Request, pk: str) -> Response:
        """Create a new PENDING execution of this workflow."""
        execution = services.execution_create(workflow=self.get_object(), owner=request.user)
        body = SubmitOutput.of(execution, "Execution created; trigger it to run.")
        return Response(body, status=status.HTTP_201_CREATED)


class CircuitBreakerView(APIView):
    """GET every handler's circuit breaker (closed, open, half_open), shared by all workers: any
    signed-in user, as on the dashboard's handlers page (a task that failed with `circuit_open`
    points its owner here)."""

    @extend_schema(operation_id="circuits", responses={200: contract.Circuits})
    def get(self, request: Request) -> Response:
        circuits = {
            handler: {
                "state": state.get("state", "closed"),
                "consecutive_failures": int(state.get("failures", 0)),
                "retry_after": float(state.get("until", 0)) or None,
            }
            for handler, state in get_streams().circuits().items()
        }
        return Response({"circuits": circuits})


class ExecutionRerunView(APIView):
    """POST to re-run a FAILED, TIMED_OUT or CANCELLED execution from its failure: the failed and
    cancelled nodes run again with fresh attempts, completed ones keep their outputs."""

    throttle_scope = TRIGGER

    @extend_schema(
        operation_id="execution_rerun",
        parameters=[EXECUTION_ID],
        request=None,
        responses={
            202: contract.ExecutionChange,
            409: conflict("Only a FAILED, TIMED_OUT or CANCELLED execution can be re-run."),
        },
    )
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        execution = rerun.execution_rerun(
            execution=visible_execution(request, execution_id), user=request.user
        )
        body = contract.ExecutionChange.of(execution, "Execution re-run from failure.")
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExecutionRetriggerView(APIView):
    """POST to run the execution's workflow again as a new execution, with optional new `params`;
    the old execution is left as it is."""

    throttle_scope = SUBMIT

    @extend_schema(
        operation_id="execution_retrigger",
        parameters=[EXECUTION_ID],
        request=TriggerInput,
        responses={202: contract.ExecutionStarted},
    )
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        previous = visible_execution(request, execution_id)
        data = TriggerInput(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        execution = rerun.execution_retrigger(
            execution=previous, params=data.validated_data["params"], owner=request.user
        )
        body = contract.ExecutionStarted.of(
            execution, f"New execution of the workflow started (re-triggered from {previous.id})."
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)
