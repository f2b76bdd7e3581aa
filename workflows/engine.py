"""The hot path: apply a batch of completions, release children, dispatch what became ready;
and trigger, which starts an execution by queueing its roots.

Python decides (conditions, templates, retries); the transitions in `workflows.statements`
write, each defined once. Executions are locked first, in id order, so concurrent orchestrators
never deadlock and never race on one execution. Cost per completion is O(out-degree): children
are found in the compiled DAG, their dependency counters are decremented set-based, and only the
outputs that the ready children's templates reference are read back. On PostgreSQL the common
cases take one round trip, transaction included (`completions_commit_at_once`, the first step of
`execution_trigger`): the same transitions chained as CTEs. The general path
(`completions_apply`) runs inside the caller's transaction and covers every case.
"""

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from resilience.clock import SYSTEM, Clock
from workflows import maps, signals, statements, stop_flags, subworkflows
from workflows.bulk_sql import from_db_json, index_paths_only
from workflows.conditions import ConditionError
from workflows.dag import SUBWORKFLOW, map_item_of
from workflows.dag_cache import dag_for
from workflows.dispatch import Dispatch, load_outputs, messages_for_queued, task_message
from workflows.failures import fail_before_dispatch, handle_failures
from workflows.messages import CompletionMessage, TaskMessage, from_epoch
from workflows.models import Execution, TaskRun
from workflows.runs import Run, lock_runs, runs_from
from workflows.templating import PARAMS, TemplateError, resolve

log = structlog.get_logger(__name__)
OPEN_TASK_STATES = (TaskRun.Status.PENDING, TaskRun.Status.QUEUED, TaskRun.Status.RUNNING)


def one_statement_paths() -> bool:
    """PostgreSQL's one-statement trigger and completion paths, unless ENGINE_ONE_STATEMENT_PATHS
    is off: then every batch takes the general path, with the same effects in more round trips.
    The engine tests run both ways, so that the two cannot drift apart."""
    return connection.vendor == "postgresql" and settings.ENGINE_ONE_STATEMENT_PATHS


def completions_apply(completions: list[CompletionMessage], *, clock: Clock = SYSTEM) -> Dispatch:
    """Record a batch of outcomes; return what to publish once the transaction commits. Retries
    fall due by `clock`."""
    unique = _unique(completions)
    index_paths_only()
    if one_statement_paths() and all(c.workflow_id for c in unique):
        # The lock, the outcomes and the released children in one round trip.
        at_once = statements.outcomes_and_children_at_once(
            _execution_ids(unique), _outcome_rows(unique), _edges(unique, with_config=False)
        )
        runs, recorded = runs_from(at_once.locked), at_once.recorded
        released = _ready_children(runs, at_once.released)
    else:
        runs = lock_runs(c.execution_id for c in unique)
        recorded, released = statements.record_outcomes(_outcome_rows(unique)), None
    accepted = {
        (pk, attempt): (retry_base, from_db_json(config)) for pk, attempt, retry_base, config in recorded
    }
    live = [c for c in unique if _is_live(c, runs)]
    succeeded, failed, duplicates = [], [], []
    for completion in live:
        key = (completion.task_id, completion.attempt)
        if key not in accepted:
            duplicates.append(completion)  # redelivered, or a late attempt fenced off
            continue
        run = runs[completion.execution_id]
        if completion.ok:
            run.node_succeeded(completion.node_id, completion.output)
            succeeded.append((run, completion.node_id))
        else:
            failed.append((run, completion, accepted[key]))
    dispatch = Dispatch(
        outcomes=_outcomes(runs, [c for c in live if (c.task_id, c.attempt) in accepted]),
        fenced=len(completions) - len(succeeded) - len(failed),
    )
    handle_failures(failed, dispatch, now=clock.time())
    items = [(run, node_id) for run, node_id in succeeded if map_item_of(node_id)]
    if released is None:
        released = _release_children([done for done in succeeded if not map_item_of(done[1])])
    released += _release_children(maps.items_done(items, timezone.now())) if items else []
    dispatch.tasks.extend(advance(released))
    dispatch.tasks.extend(_children_left_queued(duplicates, runs))
    dispatch.finished = finish_runs(runs.values())
    dispatch.dead_letters = [event for run in runs.values() for event in run.dead_letters]
    return dispatch.without_failed(runs)


def completions_commit_at_once(completions: list[CompletionMessage]) -> Dispatch | None:
    """The common case in one round trip, transaction included: on PostgreSQL, when every
    completion succeeded and every child it releases is static (no condition, no template), the
    lock, the outcomes, the children's counters, queueing the ready ones and the executions'
    counters are one pipeline: BEGIN, the lock, one statement, COMMIT. Returns None when the
    batch needs the general path (`completions_apply`); call it outside any transaction."""
    unique = _unique(completions)
    if not one_statement_paths() or not all(
        c.ok and c.workflow_id and not map_item_of(c.node_id) for c in unique
    ):
        return None
    edges = _edges(unique, with_config=True)
    if edges is None:
        return None
    at_once = statements.completions_commit_at_once(
        _execution_ids(unique), _outcome_rows(unique), edges, timezone.now()
    )
    runs = runs_from(at_once.locked)
    accepted = {(pk, attempt) for pk, attempt, _, _ in at_once.recorded}
    live = [c for c in unique if _is_live(c, runs)]
    recorded = [c for c in live if (c.task_id, c.attempt) in accepted]
    for completion in recorded:
        runs[completion.execution_id].node_succeeded(completion.node_id, completion.output)
    ready = _ready_children(runs, at_once.released)
    load_outputs((run, node_id) for run, node_id, _, _ in ready)
    for execution_id, status in at_once.counted:
        run = runs[str(uuid.UUID(str(execution_id)))]
        run.counted(status, run.unfinished)
    _ended(list(runs.values()))
    duplicates = [c for c in live if (c.task_id, c.attempt) not in accepted]
    return Dispatch(
        tasks=[
            task_message(run, node_id, pk, attempt, run.dag.nodes[node_id].config)
            for run, node_id, pk, attempt in ready
        ]
        + _children_left_queued(duplicates, runs),
        finished=[str(run.id) for run in runs.values() if run.ended_now],
        outcomes=_outcomes(runs, recorded),
        fenced=len(completions) - len(recorded),
    )


def _unique(completions: list[CompletionMessage]) -> list[CompletionMessage]:
    return list({(c.task_id, c.attempt): c for c in completions}.values())


def _execution_ids(completions: list[CompletionMessage]) -> list[uuid.UUID]:
    return sorted({uuid.UUID(c.execution_id) for c in completions})


def _edges(completions: list[CompletionMessage], *, with_config: bool) -> list[tuple] | None:
    """(parent task id, execution, child node[, child's config]) of every child the successes
    may release, for the one-statement paths. With `with_config`, None if a child is not static
    (its condition or templates need Python)."""
    edges = []
    for c in completions:
        if not c.ok:
            continue
        dag = dag_for(uuid.UUID(c.workflow_id))
        for child in dag.children.get(c.node_id, ()):
            if not with_config:
                edges.append((c.task_id, c.execution_id, child))
            elif dag.nodes[child].static:
                edges.append((c.task_id, c.execution_id, child, dag.nodes[child].config))
            else:
                return None
    return edges


def _ready_children(runs: dict[str, Run], released: list[tuple]) -> list[tuple[Run, str, int, int]]:
    """(run, node id, task id, attempt) of the released children that are ready. Each
    execution's id is normalised once, not once per child (a fan-out releases thousands)."""
    run_of: dict = {}
    ready_children = []
    for pk, execution_id, node_id, attempt, ready in released:
        if ready:
            run = run_of.get(execution_id)
            if run is None:
                run = run_of[execution_id] = runs[str(uuid.UUID(str(execution_id)))]
            ready_children.append((run, node_id, pk, attempt))
    return ready_children


def _is_live(completion: CompletionMessage, runs: dict[str, Run]) -> bool:
    run = runs.get(completion.execution_id)
    return run is not None and run.status == Execution.Status.RUNNING


class TriggerRefused(Exception):
    """The execution is not PENDING (`status`), or does not exist (`status` None)."""

    def __init__(self, status: str | None):
        super().__init__(status)
        self.status = status


@dataclass
class Triggered:
    """A started execution: its status (RUNNING, or already ended if every root was skipped or
    failed to resolve), the roots to publish and the dead letters written."""

    status: str
    tasks: list[TaskMessage]
    dead_letters: list[dict] = field(default_factory=list)


def execution_trigger(
    execution_id: uuid.UUID, workflow_id: uuid.UUID, params: dict, deadline: datetime | None
) -> Triggered:
    """Start a PENDING execution: RUNNING with `params` and `deadline`, its roots queued (or
    skipped). Roots read only `params`, so on PostgreSQL, when no root is skipped and every one
    resolves, it is one statement, transaction included; otherwise the general path, under the
    execution's lock, in the caller's transaction. TriggerRefused if it is not PENDING."""
    now = timezone.now()
    tasks = _start_at_once(execution_id, workflow_id, params, deadline, now)
    if tasks is not None:
        return Triggered(Execution.Status.RUNNING, tasks)
    with transaction.atomic():
        run = lock_runs([execution_id]).get(str(execution_id))
        if run is None or run.status != Execution.Status.PENDING:
            raise TriggerRefused(run.status if run else None)
        statements.start_execution(execution_id, params, deadline, now)
        run.start(params, deadline)
        roots = TaskRun.objects.filter(execution_id=run.id, node_id__in=run.dag.roots).values_list(
            "id", "node_id", "attempt"
        )
        tasks = advance([(run, node_id, pk, attempt) for pk, node_id, attempt in roots])
        finish_runs([run])
    return Triggered(run.status, tasks if run.failure is None else [], run.dead_letters)


def _start_at_once(
    execution_id: uuid.UUID, workflow_id: uuid.UUID, params: dict, deadline: datetime | None, now: datetime
) -> list[TaskMessage] | None:
    """The one-statement trigger (PostgreSQL): the roots' conditions and templates are evaluated
    first, then one statement starts the execution and queues them. None when this does not
    apply: another backend, a root skipped or failing to resolve, or the execution not PENDING
    (the general path then says why, under the lock)."""
    if not one_statement_paths():
        return None
    dag = dag_for(workflow_id)
    scope = {PARAMS: params}
    configs = {}
    for node_id in dag.roots:
        node = dag.nodes[node_id]
        if node.map_over is not None or node.handler == SUBWORKFLOW:
            return None
        try:
            if node.condition is not None and not node.condition.evaluate(scope):
                return None
            configs[node_id] = resolve(
                node.config, scope, strict=dag.strict_templates, max_bytes=settings.RENDERED_CONFIG_MAX_BYTES
            )
        except (ConditionError, TemplateError):
            return None
    rows = statements.execution_start_at_once(execution_id, params, deadline, now, list(configs.items()))
    if not rows:
        return None
    run = Run(
        id=execution_id,
        status=Execution.Status.RUNNING,
        params=params,
        unfinished=0,
        dag=dag,
        workflow_id=str(workflow_id),
        deadline=deadline.timestamp() if deadline else None,
    )
    return [task_message(run, node_id, pk, attempt, configs[node_id]) for pk, node_id, attempt in rows]


def advance(ready: list[tuple[Run, str, int, int]]) -> list[TaskMessage]:
    """Evaluate conditions and templates of ready nodes (run, node id, task id, current attempt):
    queue them, expand the mapped ones into their items, or skip them and release their
    children. A mapped node's item here (a re-run) is queued again with its config."""
    messages: list[TaskMessage] = []
    now = timezone.now()
    while ready:
        load_outputs((run, node_id) for run, node_id, _, _ in ready)
        queued, skipped, mapped, items, subs = [], [], [], [], []
        for run, node_id, pk, attempt in ready:
            if run.failure is not None:
                continue
            if map_item_of(node_id):
                items.append((run, node_id, pk))
                continue
            node = run.dag.nodes[node_id]
            scope = run.scope()
            try:
                if node.condition is not None and not node.condition.evaluate(scope):
                    skipped.append((run, node_id, pk))
                    continue
                if node.map_over is not None:
                    mapped.append((run, node_id, pk))
                    continue
                config = resolve(
                    node.config,
                    scope,
                    strict=run.dag.strict_templates,
                    max_bytes=settings.RENDERED_CONFIG_MAX_BYTES,
                )
            except (ConditionError, TemplateError) as exc:
                fail_before_dispatch(run, node_id, pk, exc)
                continue
            if node.handler == SUBWORKFLOW:
                subs.append((run, node_id, pk, config))
            else:
                queued.append((run, node_id, pk, attempt + 1, config))
        messages.extend(_mark_queued(queued))
        messages.extend(_items_queued_again(items, now))
        expanded, completed = maps.expand(mapped, now)
        messages.extend(expanded)
        messages.extend(_children_started(subs, now))
        _mark_skipped(skipped, now)
        ready = _release_children([(run, node_id) for run, node_id, _ in skipped] + completed)
    return messages


def _children_started(subs: list[tuple[Run, str, int, dict]], now: datetime) -> list[TaskMessage]:
    """Sub-workflow nodes: their children are created and triggered in this transaction; returns
    the children's roots to publish (their dead letters go out with the parents')."""
    messages = []
    parents = {pk: run for run, _, pk, _ in subs}
    for child, params, deadline in subworkflows.spawn(subs, now):
        triggered = execution_trigger(child.id, child.workflow_id, params, deadline)
        messages.extend(triggered.tasks)
        for event in triggered.dead_letters:
            parents[child.parent_task_id].dead_lettered(event)
    return messages


def _items_queued_again(items: list[tuple[Run, str, int]], now: datetime) -> list[TaskMessage]:
    queued = statements.queue_retries([(pk, now) for _, _, pk in items])
    return [task_message(run, item_id, pk, *queued[pk]) for run, item_id, pk in items]


def cancel_open_tasks(execution_id: uuid.UUID, now: datetime) -> None:
    """Everything in the execution that has not finished becomes CANCELLED."""
    TaskRun.objects.filter(execution_id=execution_id, status__in=OPEN_TASK_STATES).update(
        status=TaskRun.Status.CANCELLED, finished_at=now
    )


def finish_runs(runs: Iterable[Run]) -> list[str]:
    """Count each execution's nodes finished in this transaction, and end it where that says so
    (EXECUTIONS_COUNTED decides: FAILED on a failure, COMPLETED when nothing is left); a failed
    one's open tasks are cancelled. Returns the ids of the executions that ended."""
    now = timezone.now()
    runs = list(runs)
    rows, by_id = [], {}
    for run in runs:
        if run.failure is not None:
            cancel_open_tasks(run.id, now)
        elif not (run.finished or run.added):
            continue
        rows.append((run.id, run.finished, run.added, run.failure, now))
        by_id[str(run.id)] = run
    for execution_id, status, unfinished in statements.count_finished(rows):
        by_id[str(uuid.UUID(str(execution_id)))].counted(status, unfinished)
    ended = [run for run in by_id.values() if run.ended_now]
    _ended(runs)
    for child in subworkflows.live_children([run.id for run in ended if run.failure is not None]):
        execution_stop(execution_id=child, status=Execution.Status.CANCELLED, error=PARENT_FAILED)
    return [str(run.id) for run in ended]


PARENT_FAILED = {"code": "parent_failed", "message": "the execution that started this sub-workflow failed"}


def _ended(runs: list[Run]) -> None:
    """After commit: signals for the tasks and executions that ended in this transaction, and
    the completions of the parent nodes of the sub-workflows among them."""
    signals.send_after_commit(runs)
    subworkflows.children_ended(
        [
            (run.id, run.parent_task_id, run.status, run.failure)
            for run in runs
            if run.ended_now and run.parent_task_id
        ]
    )


def execution_stop(*, execution_id: uuid.UUID, status: str, error: dict) -> bool | None:
    """End a live execution as CANCELLED or TIMED_OUT: open tasks CANCELLED, a cancel flag so
    workers drop its queued tasks and stop running ones, and its live sub-workflows stopped the
    same way. None if unknown, False if already over."""
    with transaction.atomic():
        run = lock_runs([execution_id]).get(str(execution_id))
        if run is None:
            return None
        if run.status in Execution.TERMINAL:
            return False
        now = timezone.now()
        cancel_open_tasks(execution_id, now)
        Execution.objects.filter(pk=execution_id).update(
            status=status, finished_at=now, error=error, stop_flag_stale=True
        )
        stop_flags.sync_after_commit(execution_id)
        signals.execution_stopped(str(execution_id), run.workflow_id, status)
        if run.parent_task_id:
            subworkflows.children_ended([(run.id, run.parent_task_id, status, error)])
        for child in subworkflows.live_children([execution_id]):
            execution_stop(execution_id=child, status=status, error=error)
    log.info("execution_stopped", execution_id=str(execution_id), status=status)
    return True


def _outcome_rows(completions: list[CompletionMessage]) -> list[tuple]:
    """OUTCOME_COLUMNS rows of the completions."""
    return [
        (
            c.task_id,
            c.execution_id,
            c.attempt,
            TaskRun.Status.COMPLETED if c.ok else TaskRun.Status.FAILED,
            c.output if c.ok else None,
            None if c.ok else (c.error or {"message": "unknown error"}),
            from_epoch(c.started_at),
            from_epoch(c.finished_at) or timezone.now(),
            c.worker[:200],
        )
        for c in completions
    ]


def _release_children(done: list[tuple[Run, str]]) -> list[tuple[Run, str, int, int]]:
    """Release the children of `done` (completed or skipped nodes); return those now ready."""
    counts: Counter = Counter()
    runs: dict[str, Run] = {}
    for run, node_id in done:
        runs[str(run.id)] = run
        for child in run.dag.children[node_id]:
            counts[(str(run.id), child)] += 1
    released = statements.release_children(
        [(execution_id, node_id, n) for (execution_id, node_id), n in counts.items()]
    )
    return _ready_children(runs, released)


def _mark_queued(queued: list[tuple[Run, str, int, int, dict]]) -> list[TaskMessage]:
    """Queue ready nodes with their resolved config and next attempt (their rows are locked by
    this transaction, so the attempt is known without reading it back); build their messages."""
    now = timezone.now()
    statements.queue_tasks([(run.id, node_id, config, now) for run, node_id, _, _, config in queued])
    return [task_message(run, node_id, pk, attempt, config) for run, node_id, pk, attempt, config in queued]


def _children_left_queued(duplicates: list[CompletionMessage], runs: dict[str, Run]) -> list[TaskMessage]:
    """A duplicate of an applied completion means an orchestrator may have died between its commit
    and its publish: re-publish the node's QUEUED children (workers drop copies they already ran)."""
    wanted = Q()
    for completion in duplicates:
        run = runs[completion.execution_id]
        children = run.dag.children.get(completion.node_id, ())
        if children:
            wanted |= Q(execution_id=run.id, node_id__in=children, status=TaskRun.Status.QUEUED)
    if not duplicates or wanted == Q():
        return []
    return messages_for_queued(TaskRun.objects.filter(wanted), runs)


def _outcomes(runs: dict[str, Run], recorded: list[CompletionMessage]) -> list[tuple[str, str, float | None]]:
    """(handler, outcome, seconds it ran) of each attempt recorded, for the metrics."""
    outcomes = []
    for completion in recorded:
        handler = runs[completion.execution_id].dag.node_of(completion.node_id).handler
        outcome = "ok" if completion.ok else (completion.error or {}).get("category", "unknown")
        ran = None
        if completion.started_at and completion.finished_at:
            ran = max(0.0, completion.finished_at - completion.started_at)
        outcomes.append((handler, outcome, ran))
    return outcomes


def _mark_skipped(skipped: list[tuple[Run, str, int]], now: datetime) -> None:
    if not skipped:
        return
    TaskRun.objects.filter(id__in=[pk for _, _, pk in skipped]).update(
        status=TaskRun.Status.SKIPPED, finished_at=now
    )
    for run, node_id, _ in skipped:
        run.node_skipped(node_id)
