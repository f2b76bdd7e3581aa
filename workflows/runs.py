"""`Run`: a locked execution as the engine works on it, and what a transaction has learned and
decided about it. Every change to a Run is one of its methods; the engine, failures, trigger and
re-run call them and then write what they say."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from workflows.bulk_sql import db_uuid, from_db_datetime, from_db_json, hot_cursor
from workflows.dag import Dag
from workflows.dag_cache import dag_for
from workflows.models import Execution, TaskRun
from workflows.templating import PARAMS

TASKRUN = TaskRun._meta.db_table
EXECUTION = Execution._meta.db_table


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

    def start(self, params: dict, deadline: datetime | None) -> None:
        """Triggered: PENDING becomes RUNNING with its params and deadline."""
        self.status, self.params = Execution.Status.RUNNING, params
        self.deadline = deadline.timestamp() if deadline else None

    def reopen(self, unfinished: int, deadline: datetime | None) -> None:
        """Re-run or DLQ retry: an ended execution is RUNNING again with its nodes counted anew."""
        self.status, self.unfinished = Execution.Status.RUNNING, unfinished
        self.deadline = deadline.timestamp() if deadline else None

    def node_succeeded(self, node_id: str, output) -> None:
        self.finished += 1
        self.outputs[node_id] = output

    def node_skipped(self) -> None:
        self.finished += 1

    def node_failed(self, node_id: str, error: dict) -> None:
        """A node failed for good: it is finished, and the execution fails (with the first such
        node's error)."""
        self.finished += 1
        self.fail(node_id, error)

    def fail(self, node_id: str, error: dict) -> None:
        if self.failure is None:
            self.failure = {
                "code": "task_failed",
                "message": f"node {node_id!r} failed: {error.get('message', 'unknown error')}",
                "node_id": node_id,
                "details": error,
            }

    def dead_lettered(self, event: dict) -> None:
        """A dead letter written in this transaction: its `workflow:dlq` event goes out after."""
        self.dead_letters.append(event)

    def settle(self) -> bool:
        """Count the nodes finished in this transaction and end the execution if it is over:
        FAILED on a failure, COMPLETED when nothing is left. True if anything changed to write.
        Counted once: a second call in the same transaction changes nothing more."""
        if self.failure is not None:
            self.status, self.unfinished = Execution.Status.FAILED, 0
            return True
        if not self.finished:
            return False
        self.unfinished -= self.finished
        self.finished = 0
        if self.unfinished <= 0:
            self.status, self.unfinished = Execution.Status.COMPLETED, 0
        return True

    @property
    def ended(self) -> bool:
        return self.status in Execution.TERMINAL


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
