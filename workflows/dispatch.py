"""What a transaction sends once it commits (`Dispatch`), and the task messages in it, with the
outputs their handlers need."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from resilience.rate_limit import stricter_rate
from workflows import statements
from workflows.handlers import get_handler
from workflows.messages import TaskMessage
from workflows.runs import Run


@dataclass
class Dispatch:
    """What a transaction decided to send once it commits."""

    tasks: list[TaskMessage] = field(default_factory=list)
    delayed: list[tuple[TaskMessage, float]] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # executions that ended: wake their waiters
    stopped: list[str] = field(default_factory=list)  # executions that failed: workers stop their tasks
    # Counted once it commits: (handler, outcome, seconds the handler ran or None) of each
    # attempt recorded, and how many completions changed nothing (repeated, superseded, late).
    outcomes: list[tuple[str, str, float | None]] = field(default_factory=list)
    fenced: int = 0

    def without_failed(self, runs: dict[str, Run]) -> "Dispatch":
        """Drop tasks and retries of executions that failed in this same transaction, and have
        workers drop or stop the tasks of theirs already out there."""

        def alive(task: TaskMessage) -> bool:  # a sub-workflow's child started here has no Run here
            run = runs.get(task.execution_id)
            return run is None or run.failure is None

        tasks = [t for t in self.tasks if alive(t)]
        retries = [(t, due) for t, due in self.delayed if alive(t)]
        stopped = [execution_id for execution_id, run in runs.items() if run.failure is not None]
        return Dispatch(tasks, retries, self.dead_letters, self.finished, stopped, self.outcomes, self.fenced)

    def extend(self, other: "Dispatch") -> None:
        self.tasks += other.tasks
        self.delayed += other.delayed
        self.dead_letters += other.dead_letters
        self.finished += other.finished
        self.stopped += other.stopped
        self.outcomes += other.outcomes
        self.fenced += other.fenced


def task_message(run: Run, node_id: str, pk: int, attempt: int, config: dict) -> TaskMessage:
    """The message a worker needs; upstream outputs only for handlers that asked for them."""
    node = run.dag.node_of(node_id)
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
    wanted: dict[str, tuple[Run, set[str]]] = {}  # by execution
    for run, node_id in ready:
        node = run.dag.node_of(node_id)
        needed = set(node.references)
        registered = get_handler(node.handler)
        if registered is not None and registered.upstream:
            needed.update(node.dependencies)
        needed -= run.outputs.keys()
        if needed:
            wanted.setdefault(str(run.id), (run, set()))[1].update(needed)
    for run, node_ids in wanted.values():
        run.outputs.update(statements.completed_outputs(run.id, list(node_ids)))


def messages_for_queued(task_runs, runs: dict[str, Run]) -> list[TaskMessage]:
    """Messages for TaskRuns already QUEUED in the database (re-publish after a lost publish)."""
    rows = list(task_runs.values_list("id", "execution_id", "node_id", "attempt", "config"))
    load_outputs((runs[str(execution_id)], node_id) for _, execution_id, node_id, _, _ in rows)
    return [
        task_message(runs[str(execution_id)], node_id, pk, attempt, config or {})
        for pk, execution_id, node_id, attempt, config in rows
    ]
