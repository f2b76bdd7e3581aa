"""`Run`: a locked execution as the engine works on it, and what a transaction has learned and
decided about it. Every change to a Run is one of its methods; the engine, failures, trigger and
re-run call them and then write what they say."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from workflows import statements
from workflows.bulk_sql import from_db_datetime, from_db_json
from workflows.dag import Dag
from workflows.dag_cache import dag_for
from workflows.models import Execution, TaskRun
from workflows.templating import PARAMS


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
    owner_id: int | None = None
    parent_task_id: int | None = None  # a sub-workflow's child: the parent's node that started it
    outputs: dict = field(default_factory=dict)
    finished: int = 0
    added: int = 0  # tasks this transaction added (a mapped node's items)
    failure: dict | None = None
    # `workflow:dlq` events for dead letters written in this transaction, published after it.
    dead_letters: list = field(default_factory=list)
    # (node id, status) of the tasks that ended in this transaction, and whether the execution
    # did: what `workflows.signals` sends after commit.
    ended_tasks: list = field(default_factory=list)
    ended_now: bool = False

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
        self.ended_tasks.append((node_id, TaskRun.Status.COMPLETED))

    def items_added(self, count: int) -> None:
        """A mapped node's items were created: the execution has `count` more tasks to finish."""
        self.added += count

    def node_skipped(self, node_id: str) -> None:
        self.finished += 1
        self.ended_tasks.append((node_id, TaskRun.Status.SKIPPED))

    def node_failed(self, node_id: str, error: dict) -> None:
        """A node failed for good: it is finished, and the execution fails (with the first such
        node's error)."""
        self.finished += 1
        self.ended_tasks.append((node_id, TaskRun.Status.FAILED))
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

    def counted(self, status: str, unfinished: int) -> None:
        """What `engine.finish_runs` wrote: the nodes finished in this transaction are counted
        (once), and the execution may have ended."""
        self.status, self.unfinished, self.finished, self.added = status, unfinished, 0, 0
        self.ended_now = status in Execution.TERMINAL


def lock_runs(execution_ids: Iterable[str | uuid.UUID]) -> dict[str, Run]:
    """SELECT ... FOR UPDATE the executions, in id order; keyed by str(id)."""
    return _runs(sorted({uuid.UUID(str(i)) for i in execution_ids}), lock=True)


def run_snapshot(execution_id: uuid.UUID) -> Run:
    """An execution's Run without locking it (for building messages outside the hot path)."""
    return _runs([uuid.UUID(str(execution_id))], lock=False)[str(execution_id)]


def _runs(ids: list[uuid.UUID], *, lock: bool) -> dict[str, Run]:
    return runs_from(statements.executions_select(ids, lock=lock))


def runs_from(rows: list[tuple]) -> dict[str, Run]:
    """Runs from `statements.select_runs` rows, keyed by str(id)."""
    runs = {}
    for execution_id, status, params, unfinished, workflow_id, deadline, owner_id, parent_task_id in rows:
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
            owner_id=owner_id,
            parent_task_id=parent_task_id,
        )
    return runs
