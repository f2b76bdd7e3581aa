"""REST API: the seed-compatible /workflow endpoints plus listing of workflows and executions."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows import rerun, selectors, services
from workflows.api.idempotency import idempotent
from workflows.api.long_poll import long_poll_gate
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


def visible_execution(request: Request, raw_id: str) -> Execution:
    execution = selectors.execution_for(request.user, services.parse_execution_id(raw_id))
    if execution is None:
        raise services.NotFound(f"no execution with id {raw_id!r}")
    return execution


class WorkflowSubmitView(APIView):
    """POST a workflow definition: validated, stored, and a PENDING execution created."""

    throttle_scope = SUBMIT

    @extend_schema(request=dict, responses={201: SubmitOutput})
    @idempotent
    def post(self, request: Request) -> Response:
        execution = services.workflow_submit(payload=request.data, owner=request.user)
        body = SubmitOutput.of(execution, "Workflow submitted; trigger the execution to run it.")
        return Response(body, status=status.HTTP_201_CREATED)


class WorkflowTriggerView(APIView):
    """POST to start a PENDING execution, with optional `params` for `{{ params.x }}` templates."""

    throttle_scope = TRIGGER

    @extend_schema(request=TriggerInput, responses={202: ExecutionOutput})
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        execution = services.execution_to_trigger(viewer=request.user, raw_id=execution_id)
        data = TriggerInput(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        execution = services.execution_trigger(execution=execution, params=data.validated_data["params"])
        body = {
            "execution_id": str(execution.id),
            "status": execution.status,
            "message": "Execution started.",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExecutionStatusView(APIView):
    """GET an execution's status and node states; DELETE cancels it."""

    long_polls = True  # a GET with ?wait= is throttled as `long_poll`, not `reads`

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait",
                float,
                description="Long poll: answer as soon as the execution has ended, or after this "
                f"many seconds (at most LONG_POLL_MAX_SECONDS, {settings.LONG_POLL_MAX_SECONDS:g} by "
                "default), whichever comes first. 429 with Retry-After when too many long polls "
                "are already waiting (LONG_POLL_MAX_PER_PROCESS, LONG_POLL_MAX_PER_USER).",
            )
        ],
        responses={200: dict},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        wanted, wait = (
            services.parse_execution_id(execution_id),
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

    @extend_schema(responses={200: dict})
    def delete(self, request: Request, execution_id: str) -> Response:
        execution = services.execution_cancel(
            execution=visible_execution(request, execution_id), user=request.user
        )
        return Response(
            {"execution_id": str(execution.id), "status": execution.status, "message": "Execution cancelled."}
        )


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

    @extend_schema(responses={200: dict})
    def get(self, request: Request, execution_id: str) -> Response:
        return Response(selectors.execution_results(visible_execution(request, execution_id)))


class ExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """Executions, newest first; filter with ?status= and ?workflow=."""

    serializer_class = ExecutionOutput
    lookup_value_regex = "[^/]+"

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(Execution.Status.values)),
            OpenApiParameter("workflow", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = selectors.executions_visible_to(self.request.user)
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted.upper() not in Execution.Status.values:
                raise services.ServiceError(
                    f"unknown status {wanted!r}; use one of {list(Execution.Status.values)}"
                )
            queryset = queryset.filter(status=wanted.upper())
        workflow = self.request.query_params.get("workflow")
        if workflow:
            queryset = queryset.filter(workflow_id=services.parse_filter_id(workflow, "workflow"))
        return queryset

    def get_object(self):
        return visible_execution(self.request, self.kwargs["pk"])

    @action(detail=True, methods=["get"])
    def tasks(self, request: Request, pk: str) -> Response:
        """Every task of the execution with its attempt, config, output, error and timings."""
        runs = selectors.task_runs_of(self.get_object())
        page = selectors.with_live_status(self.paginate_queryset(runs))
        return self.get_paginated_response(TaskRunOutput(page, many=True).data)


class WorkflowViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored workflow definitions; POST .../executions starts another run of one."""

    lookup_value_regex = "[^/]+"
    throttle_scope = None  # set by the `executions` action (DRF takes only attributes the class has)

    def get_serializer_class(self):
        return WorkflowListOutput if self.action == "list" else WorkflowOutput

    def get_queryset(self):
        return selectors.workflows_visible_to(self.request.user)

    def get_object(self):
        workflow_id = services.parse_execution_id(self.kwargs["pk"])
        workflow = self.get_queryset().filter(pk=workflow_id).first()
        if workflow is None:
            raise services.NotFound(f"no workflow with id {self.kwargs['pk']!r}")
        return workflow

    @extend_schema(request=None, responses={201: SubmitOutput})
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

    @extend_schema(responses={200: dict})
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
        request=None,
        responses={
            202: inline_serializer(
                "RerunOutput",
                {
                    "execution_id": serializers.UUIDField(),
                    "status": serializers.CharField(),
                    "message": serializers.CharField(),
                },
            )
        },
    )
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        execution = rerun.execution_rerun(
            execution=visible_execution(request, execution_id), user=request.user
        )
        body = {
            "execution_id": str(execution.id),
            "status": execution.status,
            "message": "Execution re-run from failure.",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExecutionRetriggerView(APIView):
    """POST to run the execution's workflow again as a new execution, with optional new `params`;
    the old execution is left as it is."""

    throttle_scope = SUBMIT

    @extend_schema(
        request=TriggerInput,
        responses={
            202: inline_serializer(
                "RetriggerOutput",
                {
                    "execution_id": serializers.UUIDField(),
                    "workflow_id": serializers.UUIDField(),
                    "status": serializers.CharField(),
                    "message": serializers.CharField(),
                },
            )
        },
    )
    @idempotent
    def post(self, request: Request, execution_id: str) -> Response:
        previous = visible_execution(request, execution_id)
        data = TriggerInput(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        execution = rerun.execution_retrigger(
            execution=previous, params=data.validated_data["params"], owner=request.user
        )
        body = {
            "execution_id": str(execution.id),
            "workflow_id": str(execution.workflow_id),
            "status": execution.status,
            "message": f"New execution of the workflow started (re-triggered from {previous.id}).",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
