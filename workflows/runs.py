"""Executions as the engine works on them: the compiled-DAG cache, `Run` (a locked execution and
what a transaction decides about it), `Dispatch` (what to publish after commit), and building task
messages with the outputs their handlers need."""

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Q

from resilience.rate_limit import stricter_rate
from workflows.bulk_sql import (
    db_uuid,
    from_db_datetime,
    from_db_json,
    hot_cursor,
)
from workflows.dag import Dag, from_definition
from workflows.handlers import get_handler
from workflows.messages import TaskMessage
from workflows.models import Execution, TaskRun, Workflow
from workflows.templating import PARAMS

TASKRUN = TaskRun._meta.db_table
WORKFLOW = Workflow._meta.db_table
EXECUTION = Execution._meta.db_table
DAG_CACHE_SIZE = 512
_dags: OrderedDict = OrderedDict()


def dag_for(workflow_id: uuid.UUID) -> Dag:
    """Compiled DAG of a workflow; definitions never change, so each process compiles once."""
    key = str(workflow_id)
    dag = _dags.get(key)
    if dag is None:
        with hot_cursor() as cursor:
            cursor.execute(f"SELECT dag, name FROM {WORKFLOW} WHERE id = %s", [db_uuid(workflow_id)])  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            definition, name = cursor.fetchone()
        dag = from_definition(from_db_json(definition), name=name)
        remember_dag(key, dag)
    return dag


def remember_dag(workflow_id: uuid.UUID | str, dag: Dag) -> None:
    """Keep a compiled DAG (the API calls this at submit, so trigger needs no reload)."""
    _dags[str(workflow_id)] = dag
    while len(_dags) > DAG_CACHE_SIZE:
        _dags.popitem(last=False)


@dataclass
class Run:
    """One locked execution and what this transaction has learned and decided about it."""

    id: uuid.UUID
    status: str
    params: dict
    unfinished: int
    dag: Dag
    workflow_id: str
    deadline: float | None = None
    outputs: dict = field(default_factory=dict)
    finished: int = 0
    failure: dict | None = None
    # `workflow:dlq` events for dead letters written in this transaction, published after it.
    dead_letters: list = field(default_factory=list)

    def scope(self) -> dict:
        return {**self.outputs, PARAMS: self.params}

    def fail(self, node_id: str, error: dict) -> None:
        if self.failure is None:
            self.failure = {
                "code": "task_failed",
                "message": f"node {node_id!r} failed: {error.get('message', 'unknown error')}",
                "node_id": node_id,
                "details": error,
            }


def lock_runs(execution_ids: Iterable[str | uuid.UUID]) -> dict[str, Run]:
    """SELECT ... FOR UPDATE the executions, in id order; keyed by str(id)."""
    return _runs(sorted({uuid.UUID(str(i)) for i in execution_ids}), lock=True)


def run_snapshot(execution_id: uuid.UUID) -> Run:
    """An execution's Run without locking it (for building messages outside the hot path)."""
    return _runs([uuid.UUID(str(execution_id))], lock=False)[str(execution_id)]


def _runs(ids: list[uuid.UUID], *, lock: bool) -> dict[str, Run]:
    if not ids:
        return {}
    with hot_cursor() as cursor:
        select_runs(cursor, ids, lock=lock)
        return runs_from(cursor.fetchall())


def select_runs(cursor, ids: list[uuid.UUID], *, lock: bool) -> None:
    """Send the executions' SELECT (FOR UPDATE); the caller reads the cursor when it needs them.
    Raw SQL: this runs first in every orchestrator transaction, and building it with the ORM
    cost more than the query itself."""
    if connection.vendor == "postgresql":
        where, params = "id = ANY(%s)", [ids]
    else:
        where, params = f"id IN ({', '.join(['%s'] * len(ids))})", [db_uuid(i) for i in ids]
    sql = (
        f"SELECT id, status, params, unfinished_tasks, workflow_id, deadline FROM {EXECUTION} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"WHERE {where} ORDER BY id"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    cursor.execute(sql, params)


def runs_from(rows: list[tuple]) -> dict[str, Run]:
    runs = {}
    for execution_id, status, params, unfinished, workflow_id, deadline in rows:
        execution_id = uuid.UUID(str(execution_id))
        deadline = from_db_datetime(deadline)
        runs[str(execution_id)] = Run(
            id=execution_id,
            status=status,
            params=from_db_json(params) or {},
            unfinished=unfinished,
            dag=dag_for(uuid.UUID(str(workflow_id))),
            workflow_id=str(uuid.UUID(str(workflow_id))),
            deadline=deadline.timestamp() if deadline else None,
        )
    return runs


@dataclass
class Dispatch:
    """What a transaction decided to send once it commits."""

    tasks: list[TaskMessage] = field(default_factory=list)
    delayed: list[tuple[TaskMessage, float]] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # executions that ended: wake their waiters
    stopped: list[str] = field(default_factory=list)  # executions that failed: workers stop their tasks

    def without_failed(self, runs: dict[str, Run]) -> "Dispatch":
        """Drop tasks and retries of executions that failed in this same transaction, and have
        workers drop or stop the tasks of theirs already out there."""
        alive = [t for t in self.tasks if runs[t.execution_id].failure is None]
        retries = [(t, due) for t, due in self.delayed if runs[t.execution_id].failure is None]
        stopped = [execution_id for execution_id, run in runs.items() if run.failure is not None]
        return Dispatch(alive, retries, self.dead_letters, self.finished, stopped)

    def extend(self, other: "Dispatch") -> None:
        self.tasks += other.tasks
        self.delayed += other.delayed
        self.dead_letters += other.dead_letters
        self.finished += other.finished
        self.stopped += other.stopped


def task_message(run: Run, node_id: str, pk: int, attempt: int, config: dict) -> TaskMessage:
    """The message a worker needs; upstream outputs only for handlers that asked for them."""
    node = run.dag.nodes[node_id]
    registered = get_handler(node.handler)
    upstream = None
    if registered is not None and registered.upstream:
        upstream = {d: run.outputs.get(d) for d in node.dependencies}
    return TaskMessage(
        task_id=pk,
        execution_id=str(run.id),
        node_id=node_id,
        handler=node.handler,
        attempt=attempt,
        config=config,
        params=run.params,
        upstream=upstream,
        deadline=run.deadline,
        workflow_id=run.workflow_id,
        timeout_seconds=node.timeout_seconds,
        rate_limit=stricter_rate(node.config.get("rate_limit"), settings.RATE_LIMITS.get(node.handler)),
    )


def load_outputs(ready: Iterable[tuple[Run, str]]) -> None:
    """Read the outputs the ready nodes need (template references, upstream) that are not in memory."""
    wanted: dict[str, set[str]] = {}
    runs: dict[str, Run] = {}
    for run, node_id in ready:
        node = run.dag.nodes[node_id]
        needed = set(node.references)
        registered = get_handler(node.handler)
        if registered is not None and registered.upstream:
            needed.update(node.dependencies)
        needed -= run.outputs.keys()
        if needed:
            wanted.setdefault(str(run.id), set()).update(needed)
            runs[str(run.id)] = run
    if not wanted:
        return
    query = Q()
    for execution_id, node_ids in wanted.items():
        query |= Q(execution_id=execution_id, node_id__in=node_ids)
    for execution_id, node_id, output, status in TaskRun.objects.filter(query).values_list(
        "execution_id", "node_id", "output", "status"
    ):
        if status == TaskRun.Status.COMPLETED:
            runs[str(execution_id)].outputs[node_id] = output


def messages_for_queued(task_runs, runs: dict[str, Run]) -> list[TaskMessage]:
    """Messages for TaskRuns already QUEUED in the database (re-publish after a lost publish)."""
    rows = list(task_runs.values_list("id", "execution_id", "node_id", "attempt", "config"))
    load_outputs((runs[str(execution_id)], node_id) for _, execution_id, node_id, _, _ in rows)
    return [
        task_message(runs[str(execution_id)], node_id, pk, attempt, config or {})
        for pk, execution_id, node_id, attempt, config in rows
    ]
