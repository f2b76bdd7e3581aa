"""State transitions a user asks for: submit, start, trigger, cancel. Views and commands call these."""

import hashlib
import json
import uuid
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from workflows import dag_cache, engine, permissions, selectors, statements
from workflows.crash_points import crash_point
from workflows.dag import Dag, DagError, Limits, check_json_value, parse_workflow
from workflows.executions import execution_insert
from workflows.handlers import config_checks
from workflows.models import Execution, Workflow
from workflows.streams import get_streams
from workflows.templating import PARAMS, ConfigTooLarge, TemplateError, json_size, resolve

log = structlog.get_logger(__name__)


class ServiceError(Exception):
    """A request that cannot be carried out as asked; `status` is the HTTP status to answer with."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details or {}


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Forbidden(ServiceError, PermissionDenied):
    """The user may see the object but not do this to it (see workflows/permissions.py). Also a
    PermissionDenied: pages that let it through get the site's 403 page."""

    status = 403
    code = "permission_denied"


def permission_require(user, owner_id: int | None, permission: str, doing: str) -> None:
    """Forbidden unless `user` owns the object or holds `permission`; `doing` completes "you may
    not ..." in the message."""
    if not permissions.may_act(user, owner_id, permission):
        raise Forbidden(
            f"you may not {doing}: it takes the {permission} permission", details={"permission": permission}
        )


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class TooManyOpenExecutions(ServiceError):
    """The owner is at MAX_OPEN_EXECUTIONS_PER_USER: retry once some of them have ended."""

    status = 429
    code = "too_many_open_executions"


def workflow_submit(*, payload: object, owner) -> Execution:
    """Validate a workflow, store it, and create its first (PENDING) execution."""
    dag = parse_workflow(
        payload,
        handlers=config_checks(),  # names, each with its config schema's check
        limits=Limits(
            max_nodes=settings.DAG_MAX_NODES,
            max_config_bytes=settings.DAG_MAX_CONFIG_BYTES,
            max_retry_attempts=settings.DAG_MAX_RETRY_ATTEMPTS,
        ),
    )
    definition = dag.to_json()
    canonical = json.dumps(
        {"name": dag.name, "timeout_seconds": dag.timeout_seconds, "dag": definition},
        sort_keys=True,
        separators=(",", ":"),
    )
    workflow = Workflow(
        name=dag.name,
        description=dag.description,
        dag=definition,
        content_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        node_count=len(dag.nodes),
        timeout_seconds=dag.timeout_seconds,
        owner=owner,
    )
    execution = _insert(workflow, dag, owner, new_workflow=True)
    dag_cache.remember_dag(workflow.id, dag)
    return execution


def execution_create(*, workflow: Workflow, owner, dag: Dag | None = None) -> Execution:
    """A new PENDING execution of `workflow`, owned by `owner`, with one PENDING TaskRun per node.
    Starting another user's workflow takes the run-any permission."""
    permission_require(
        owner, workflow.owner_id, permissions.RUN_ANY_EXECUTION, "start another user's workflow"
    )
    dag = dag or dag_cache.dag_for(workflow.id)
    return _insert(workflow, dag, owner)


def _insert(workflow: Workflow, dag: Dag, owner, *, new_workflow: bool = False) -> Execution:
    """TooManyOpenExecutions, and nothing written, when the owner is at
    MAX_OPEN_EXECUTIONS_PER_USER."""
    execution = execution_insert(
        workflow, dag, owner=owner, cap=settings.MAX_OPEN_EXECUTIONS_PER_USER, new_workflow=new_workflow
    )
    if execution is None:
        raise _too_many_open_executions()
    return execution


def _too_many_open_executions() -> TooManyOpenExecutions:
    cap = settings.MAX_OPEN_EXECUTIONS_PER_USER
    return TooManyOpenExecutions(
        f"you have {cap} executions pending or running, the most you may have: trigger, cancel or "
        "wait for some of them before creating more",
        details={"limit": cap},
    )


def execution_to_trigger(*, viewer, raw_id: str) -> Execution:
    """The execution `viewer` asks to trigger, with its workflow's timeout, or NotFound.

    One raw indexed query: on the trigger hot path the ORM's select_related cost several times
    the query. The other fields are deferred, as with `.only()`."""
    execution_id = parse_id(raw_id)
    row = statements.trigger_target(execution_id)
    if row is None or not selectors.may_see(viewer, row[1]):
        raise NotFound(f"no execution with id {raw_id!r}")
    permission_require(viewer, row[1], permissions.RUN_ANY_EXECUTION, "trigger another user's execution")
    workflow_id, owner_id, timeout = uuid.UUID(str(row[0])), row[1], row[2]
    execution = Execution.from_db(
        connection.alias, ["id", "workflow_id", "owner_id"], [execution_id, workflow_id, owner_id]
    )
    execution.workflow = Workflow.from_db(connection.alias, ["id", "timeout_seconds"], [workflow_id, timeout])
    return execution


def execution_trigger(*, execution: Execution, params: dict) -> Execution:
    """Start a PENDING execution: mark it RUNNING, queue its roots, publish them after commit."""
    check_json_value(params, "'params'")
    _check_params_size(params)
    _check_root_configs(dag_cache.dag_for(execution.workflow_id), params)
    now = timezone.now()
    timeout = execution.workflow.timeout_seconds
    deadline = now + timedelta(seconds=timeout) if timeout else None
    try:
        triggered = engine.execution_trigger(execution.id, execution.workflow_id, params, deadline)
    except engine.TriggerRefused as refused:
        if refused.status is None:
            raise NotFound("execution not found") from None
        raise Conflict(
            f"execution is {refused.status}; only a PENDING execution can be triggered", code="not_pending"
        ) from None
    streams = get_streams()
    # Committed by now (or, inside a caller's transaction, published once that commits). A crash
    # in between leaves the roots QUEUED for the reaper to publish (the fault suite dies here).
    transaction.on_commit(lambda: crash_point("after_trigger_commit"))
    transaction.on_commit(
        lambda: streams.publish_tasks(triggered.tasks, dead_letters=triggered.dead_letters), robust=True
    )
    log.info("execution_triggered", execution_id=str(execution.id), roots=len(triggered.tasks))
    execution.status = triggered.status
    execution.params, execution.started_at, execution.deadline = params, now, deadline
    return execution


def _check_params_size(params: dict) -> None:
    size = json_size(params)
    if size > settings.PARAMS_MAX_BYTES:
        raise ServiceError(
            f"'params' is {size} bytes as JSON, the limit is {settings.PARAMS_MAX_BYTES}",
            code="params_too_large",
        )


def _check_root_configs(dag: Dag, params: dict) -> None:
    """A root whose config these params would render larger than RENDERED_CONFIG_MAX_BYTES is
    known now: refuse the trigger (400) rather than start a run that fails at once. Roots read
    only `params`; whether a condition would skip the root does not matter."""
    scope = {PARAMS: params}
    for node_id in dag.roots:
        node = dag.nodes[node_id]
        if node.static:
            continue
        try:
            resolve(node.config, scope, max_bytes=settings.RENDERED_CONFIG_MAX_BYTES)
        except ConfigTooLarge as exc:
            raise ServiceError(
                f"node {node_id!r}: with these params, {exc}", code=exc.code, details={"node": node_id}
            ) from None
        except TemplateError:
            pass  # the run reports it, as the node's failure


def workflow_start(*, workflow: Workflow, params: object, owner) -> Execution:
    """A new execution of `workflow`, owned by `owner`, triggered with `params`: the dashboard's
    trigger form and a re-trigger. One transaction, so params that the trigger refuses leave no
    PENDING execution behind; params that are not a JSON object are a ServiceError."""
    _check_params_object(params)
    with transaction.atomic():
        execution = execution_create(workflow=workflow, owner=owner)
        return execution_trigger(execution=execution, params=params)


RUN_KEYS = {"workflow", "workflow_id", "params"}


def workflow_run(*, body: object, owner) -> Execution:
    """Submit and trigger in one request (POST /workflow/run): `{"workflow": definition}` stores
    a new workflow, `{"workflow_id": id}` runs a stored one; both with optional `params`. One
    transaction: a refused trigger leaves no workflow or PENDING execution behind."""
    if not isinstance(body, dict):
        raise ServiceError("the request body must be a JSON object", code="invalid_payload")
    unknown = set(body) - RUN_KEYS
    if unknown or ("workflow" in body) == ("workflow_id" in body):
        raise ServiceError(
            "give either 'workflow' (a definition to submit) or 'workflow_id' (a stored workflow), "
            f"and optionally 'params'{f'; unknown field(s) {sorted(unknown)}' if unknown else ''}",
            code="invalid_payload",
        )
    params = body.get("params", {})
    if "workflow_id" in body:
        try:
            workflow_id = uuid.UUID(str(body["workflow_id"]))
        except ValueError:
            raise ServiceError(
                f"'workflow_id' must be a UUID, got {str(body['workflow_id'])[:40]!r}", code="invalid_payload"
            ) from None
        workflow = selectors.workflow_for(owner, workflow_id)
        if workflow is None:
            raise NotFound(f"no workflow with id {str(workflow_id)!r}")
        return workflow_start(workflow=workflow, params=params, owner=owner)
    _check_params_object(params)
    with transaction.atomic():
        execution = workflow_submit(payload=body["workflow"], owner=owner)
        return execution_trigger(execution=execution, params=params)


def _check_params_object(params: object) -> None:
    if not isinstance(params, dict):
        raise ServiceError(f"'params' must be an object, not {type(params).__name__}", code="invalid_params")
    try:
        check_json_value(params, "'params'")  # the trigger checks this too, as a DagError
    except DagError as exc:
        raise ServiceError(exc.message, code=exc.code) from None


def execution_cancel(*, execution: Execution, user) -> Execution:
    """Cancel a PENDING or RUNNING execution and everything in it that has not finished."""
    permission_require(
        user, execution.owner_id, permissions.CANCEL_ANY_EXECUTION, "cancel another user's execution"
    )
    stopped = engine.execution_stop(
        execution_id=execution.id,
        status=Execution.Status.CANCELLED,
        error={"code": "cancelled", "message": "cancelled by request"},
    )
    if stopped is None:
        raise NotFound("execution not found")
    if not stopped:
        execution.refresh_from_db()
        raise Conflict(f"execution is already {execution.status}", code="already_finished")
    execution.refresh_from_db()
    return execution


def execution_time_out(*, execution_id: uuid.UUID) -> bool:
    """The reaper's verdict on an execution past its deadline; False if it already ended."""
    return bool(
        engine.execution_stop(
            execution_id=execution_id,
            status=Execution.Status.TIMED_OUT,
            error={"code": "workflow_timeout", "message": "the workflow ran past its timeout_seconds"},
        )
    )


def parse_id(raw: str, what: str = "execution") -> uuid.UUID:
    """A UUID from a URL, or NotFound (an id that is not a UUID names no execution or workflow)."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound(f"no {what} with id {raw!r}") from None


def parse_filter_id(raw: str, name: str) -> uuid.UUID:
    """A UUID from a query-string filter, or a 400 naming the filter."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise ServiceError(f"?{name}= must be a UUID, got {raw!r}") from None
