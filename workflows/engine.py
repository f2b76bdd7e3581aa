"""The hot path: apply a batch of completions, release children, dispatch what became ready.

Executions are locked first, in id order, so concurrent orchestrators never deadlock and never
race on one execution. Cost per completion is O(out-degree): children are found in the compiled
DAG, their dependency counters are decremented set-based, and only the outputs that the ready
children's templates reference are read back. On PostgreSQL the common cases are whole
transactions in one round trip (`completions_commit_at_once`, `execution_start_at_once`); the
general path (`completions_apply`) runs inside the caller's transaction and covers every case.
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from resilience.clock import SYSTEM, Clock
from workflows import metrics
from workflows.bulk_sql import (
    from_db_json,
    hot_cursor,
    index_paths_only,
    rows_table,
    transaction_in_one_round_trip,
    update_from_values,
)
from workflows.conditions import ConditionError
from workflows.dag_cache import dag_for
from workflows.dispatch import Dispatch, load_outputs, messages_for_queued, task_message
from workflows.failures import fail_before_dispatch, handle_failures
from workflows.messages import CompletionMessage, TaskMessage, from_epoch
from workflows.models import Execution, TaskRun
from workflows.runs import EXECUTION, TASKRUN, Run, lock_runs, runs_from, select_runs
from workflows.templating import PARAMS, TemplateError, resolve

OPEN_TASK_STATES = (TaskRun.Status.PENDING, TaskRun.Status.QUEUED, TaskRun.Status.RUNNING)


def one_statement_paths() -> bool:
    """PostgreSQL's one-statement trigger and completion paths, unless ENGINE_ONE_STATEMENT_PATHS
    is off: then every batch takes the general path, with the same effects in more round trips.
    The engine tests run both ways, so that the two cannot drift apart."""
    return connection.vendor == "postgresql" and settings.ENGINE_ONE_STATEMENT_PATHS


def completions_apply(completions: list[CompletionMessage], *, clock: Clock = SYSTEM) -> Dispatch:
    """Record a batch of outcomes; return what to publish once the transaction commits. Retries
    fall due by `clock`."""
    unique = list({(c.task_id, c.attempt): c for c in completions}.values())
    index_paths_only()
    released = None
    if one_statement_paths() and all(c.workflow_id for c in unique):
        runs, accepted, released = _record_and_release(unique)
    else:
        runs = lock_runs(c.execution_id for c in unique)
        accepted = _record_outcomes([c for c in unique if _is_live(c, runs)])
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
    _count_outcomes(runs, [c for c in live if (c.task_id, c.attempt) in accepted])
    dispatch = Dispatch()
    handle_failures(failed, dispatch, now=clock.time())
    dispatch.tasks.extend(advance(_release_children(succeeded) if released is None else released))
    dispatch.tasks.extend(_children_left_queued(duplicates, runs))
    dispatch.finished = finish_runs(runs.values())
    dispatch.dead_letters = [event for run in runs.values() for event in run.dead_letters]
    return dispatch.without_failed(runs)


def _is_live(completion: CompletionMessage, runs: dict[str, Run]) -> bool:
    run = runs.get(completion.execution_id)
    return run is not None and run.status == Execution.Status.RUNNING


def _record_and_release(
    completions: list[CompletionMessage],
) -> tuple[dict[str, Run], dict, list[tuple[Run, str, int, int]]]:
    """PostgreSQL, with each completion's workflow known up front: lock the executions, record
    the outcomes (fenced) and release the children of the accepted successes in one round trip,
    the lock first in the pipeline and the rest in one statement of data-modifying CTEs.
    Returns (runs, accepted as `_record_outcomes` does, ready children as `_release_children`)."""
    children = [
        (c.task_id, c.execution_id, child)
        for c in completions
        if c.ok
        for child in dag_for(uuid.UUID(c.workflow_id)).children.get(c.node_id, ())
    ]
    outcomes, outcome_params = rows_table(OUTCOME_COLUMNS, _outcome_rows(completions), alias="v")
    edges, edge_params = rows_table(
        [("e_parent", "int"), ("e_execution", "uuid"), ("e_node", "text")], children, alias="e"
    )
    runs, rows = _lock_then(
        completions,
        f"WITH recorded AS ({_recorded(outcomes)}), "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"released AS (UPDATE {TASKRUN} SET pending_dependencies = pending_dependencies - r.n "
        f"FROM (SELECT e_execution, e_node, count(*) AS n FROM {edges} JOIN recorded "
        f"ON recorded.id = e.e_parent AND recorded.status = '{TaskRun.Status.COMPLETED}' GROUP BY e_execution, e_node) r "
        f"WHERE {TASKRUN}.execution_id = r.e_execution AND {TASKRUN}.node_id = r.e_node "
        f"RETURNING {TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.node_id, "
        f"{TASKRUN}.pending_dependencies, {TASKRUN}.status, {TASKRUN}.attempt) "
        "SELECT true, id, attempt, retry_base, config, NULL::uuid, NULL, NULL::int, NULL FROM recorded "
        "UNION ALL SELECT false, id, attempt, NULL, NULL, execution_id, node_id, pending_dependencies, "
        "status FROM released",
        outcome_params + edge_params,
    )
    accepted = {
        (pk, attempt): (retry_base, from_db_json(config))
        for is_outcome, pk, attempt, retry_base, config, *_ in rows
        if is_outcome
    }
    ready = [
        (runs[str(execution_id)], node_id, pk, attempt)
        for is_outcome, pk, attempt, _, _, execution_id, node_id, pending, status in rows
        if not is_outcome and pending == 0 and status == TaskRun.Status.PENDING
    ]
    return runs, accepted, ready


def _lock_then(completions: list[CompletionMessage], sql: str, params: list) -> tuple[dict[str, Run], list]:
    """Lock the completions' executions (in id order), then run one statement, pipelined after
    the lock: one round trip, in a transaction of its own when called outside one, otherwise in
    the caller's. Returns the locked runs and the statement's rows."""
    with hot_cursor() as locking, hot_cursor() as cursor:
        with transaction_in_one_round_trip():
            select_runs(locking, sorted({uuid.UUID(c.execution_id) for c in completions}), lock=True)
            cursor.execute(sql, params)
        return runs_from(locking.fetchall()), cursor.fetchall()


def _recorded(outcomes: str) -> str:
    """The fenced UPDATE of outcomes of RUNNING executions, as a CTE body (the lock is taken).
    The execution's status is a scalar subquery, one primary-key lookup per row: as EXISTS, the
    planner turned it into a hash of every RUNNING execution, O(executions) per batch."""
    return (
        f"UPDATE {TASKRUN} SET {OUTCOME_ASSIGNMENTS} FROM {outcomes} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"WHERE {_outcome_fence()} AND (SELECT x.status FROM {EXECUTION} x "
        f"WHERE x.id = v.v_execution) = '{Execution.Status.RUNNING}' "
        f"RETURNING {TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.attempt, {TASKRUN}.retry_base, "
        f"{TASKRUN}.config, {TASKRUN}.status"
    )


# A child whose last dependency this batch satisfied, in the one-statement path: queued in SQL.
BECOMES_READY = f"pending_dependencies = r.n AND status = '{TaskRun.Status.PENDING}'"


def completions_commit_at_once(completions: list[CompletionMessage]) -> Dispatch | None:
    """The common case in one round trip, transaction included: on PostgreSQL, when every
    completion succeeded and every child it releases is static (no condition, no template), the
    lock, the outcomes, the children's counters, queueing the ready ones and the executions'
    counters are one pipeline: BEGIN, the lock, one statement of data-modifying CTEs, COMMIT.
    Returns None when the batch needs the general path (`completions_apply`); call it outside
    any transaction."""
    unique = list({(c.task_id, c.attempt): c for c in completions}.values())
    if not one_statement_paths() or not all(c.ok and c.workflow_id for c in unique):
        return None
    children = []
    for c in unique:
        dag = dag_for(uuid.UUID(c.workflow_id))
        for child in dag.children.get(c.node_id, ()):
            node = dag.nodes[child]
            if not node.static:
                return None
            children.append((c.task_id, c.execution_id, child, node.config))
    outcomes, outcome_params = rows_table(OUTCOME_COLUMNS, _outcome_rows(unique), alias="v")
    edges, edge_params = rows_table(
        [("e_parent", "int"), ("e_execution", "uuid"), ("e_node", "text"), ("e_config", "json")],
        children,
        alias="e",
    )
    ready_when = f"CASE WHEN {BECOMES_READY} THEN"
    runs, rows = _lock_then(
        unique,
        f"WITH recorded AS ({_recorded(outcomes)}), "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"released AS (UPDATE {TASKRUN} SET pending_dependencies = pending_dependencies - r.n, "
        f"status = {ready_when} '{TaskRun.Status.QUEUED}' ELSE status END, "
        f"attempt = {ready_when} attempt + 1 ELSE attempt END, "
        f"config = {ready_when} r.e_config ELSE config END, "
        f"queued_at = {ready_when} now() ELSE queued_at END "
        "FROM (SELECT e_execution, e_node, count(*) AS n, (array_agg(e_config))[1] AS e_config "
        f"FROM {edges} JOIN recorded ON recorded.id = e.e_parent GROUP BY e_execution, e_node) r "
        f"WHERE {TASKRUN}.execution_id = r.e_execution AND {TASKRUN}.node_id = r.e_node "
        f"RETURNING {TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.node_id, {TASKRUN}.attempt, "
        f"{TASKRUN}.status, {TASKRUN}.pending_dependencies), "
        f"counted AS (UPDATE {EXECUTION} SET "
        "unfinished_tasks = GREATEST(unfinished_tasks - c.n, 0), "
        f"status = CASE WHEN unfinished_tasks <= c.n THEN '{Execution.Status.COMPLETED}' ELSE status END, "
        "finished_at = CASE WHEN unfinished_tasks <= c.n THEN now() ELSE finished_at END "
        "FROM (SELECT execution_id AS c_execution, count(*) AS n FROM recorded GROUP BY 1) c "
        f"WHERE {EXECUTION}.id = c.c_execution RETURNING {EXECUTION}.id, {EXECUTION}.status) "
        "SELECT 'r', id, attempt, NULL::uuid, NULL::varchar, NULL::varchar FROM recorded "
        "UNION ALL SELECT 'c', id, attempt, execution_id, node_id, status FROM released "
        f"WHERE status = '{TaskRun.Status.QUEUED}' AND pending_dependencies = 0 "
        "UNION ALL SELECT 'x', NULL, NULL, id, NULL, status FROM counted",
        outcome_params + edge_params,
    )
    accepted = {(pk, attempt) for kind, pk, attempt, *_ in rows if kind == "r"}
    live = [c for c in unique if _is_live(c, runs)]
    recorded = [c for c in live if (c.task_id, c.attempt) in accepted]
    for completion in recorded:
        runs[completion.execution_id].outputs[completion.node_id] = completion.output
    ready = [
        (runs[str(execution_id)], node_id, pk, attempt)
        for kind, pk, attempt, execution_id, node_id, _ in rows
        if kind == "c"
    ]
    load_outputs((run, node_id) for run, node_id, _, _ in ready)
    _count_outcomes(runs, recorded)
    duplicates = [c for c in live if (c.task_id, c.attempt) not in accepted]
    return Dispatch(
        tasks=[
            task_message(run, node_id, pk, attempt, run.dag.nodes[node_id].config)
            for run, node_id, pk, attempt in ready
        ]
        + _children_left_queued(duplicates, runs),
        finished=[
            str(execution_id)
            for kind, _, _, execution_id, _, status in rows
            if kind == "x" and status == Execution.Status.COMPLETED
        ],
    )


def execution_start(run: Run) -> list[TaskMessage]:
    """Queue (or skip) the roots of a just-started execution; caller has locked and marked it."""
    roots = TaskRun.objects.filter(execution_id=run.id, node_id__in=run.dag.roots).values_list(
        "id", "node_id", "attempt"
    )
    messages = advance([(run, node_id, pk, attempt) for pk, node_id, attempt in roots])
    finish_runs([run])
    return messages if run.failure is None else []


def execution_start_at_once(
    execution_id: uuid.UUID, workflow_id: uuid.UUID, params: dict, deadline: datetime | None
) -> list[TaskMessage] | None:
    """Trigger in one statement, transaction included (PostgreSQL): mark the execution RUNNING
    if it is still PENDING and queue its roots. Roots can only read `params`, so their conditions
    and templates are evaluated before any SQL. None when this does not apply: another backend,
    a root skipped or failing to resolve, or the execution not PENDING; the caller then takes
    the general path, which says why under the lock."""
    if not one_statement_paths():
        return None
    dag = dag_for(workflow_id)
    scope = {PARAMS: params}
    configs = []
    for node_id in dag.roots:
        node = dag.nodes[node_id]
        try:
            if node.condition is not None and not node.condition.evaluate(scope):
                return None
            config = resolve(
                node.config, scope, strict=dag.strict_templates, max_bytes=settings.RENDERED_CONFIG_MAX_BYTES
            )
            configs.append((node_id, config))
        except (ConditionError, TemplateError):
            return None
    roots, root_params = rows_table([("r_node", "text"), ("r_config", "json")], configs, alias="r")
    now = timezone.now()
    with hot_cursor() as cursor:
        with transaction_in_one_round_trip():
            cursor.execute(
                f"WITH started AS (UPDATE {EXECUTION} SET status = '{Execution.Status.RUNNING}', started_at = %s, params = %s, "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
                f"deadline = %s WHERE id = %s AND status = '{Execution.Status.PENDING}' RETURNING id), "
                f"queued AS (UPDATE {TASKRUN} SET status = '{TaskRun.Status.QUEUED}', attempt = attempt + 1, "
                f"config = r.r_config, queued_at = %s FROM {roots}, started "
                f"WHERE {TASKRUN}.execution_id = started.id AND {TASKRUN}.node_id = r.r_node "
                f"AND {TASKRUN}.status = '{TaskRun.Status.PENDING}' RETURNING {TASKRUN}.id, {TASKRUN}.node_id, {TASKRUN}.attempt) "
                "SELECT queued.id, queued.node_id, queued.attempt FROM started LEFT JOIN queued ON true",
                [now, json.dumps(params), deadline, execution_id, now, *root_params],
            )
        rows = cursor.fetchall()
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
    config = dict(configs)
    return [task_message(run, node_id, pk, attempt, config[node_id]) for pk, node_id, attempt in rows]


def advance(ready: list[tuple[Run, str, int, int]]) -> list[TaskMessage]:
    """Evaluate conditions and templates of ready nodes (run, node id, task id, current attempt):
    queue them, or skip them and release their children."""
    messages: list[TaskMessage] = []
    while ready:
        load_outputs((run, node_id) for run, node_id, _, _ in ready)
        queued, skipped = [], []
        for run, node_id, pk, attempt in ready:
            if run.failure is not None:
                continue
            node = run.dag.nodes[node_id]
            scope = run.scope()
            try:
                if node.condition is not None and not node.condition.evaluate(scope):
                    skipped.append((run, node_id, pk))
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
            queued.append((run, node_id, pk, attempt + 1, config))
        messages.extend(_mark_queued(queued))
        _mark_skipped(skipped)
        ready = _release_children([(run, node_id) for run, node_id, _ in skipped])
    return messages


def cancel_open_tasks(execution_id: uuid.UUID, now: datetime) -> None:
    """Everything in the execution that has not finished becomes CANCELLED."""
    TaskRun.objects.filter(execution_id=execution_id, status__in=OPEN_TASK_STATES).update(
        status=TaskRun.Status.CANCELLED, finished_at=now
    )


def finish_runs(runs: Iterable[Run]) -> list[str]:
    """Write each execution's counters and, where it ended, its terminal status; returns the ids
    of the executions that ended."""
    now = timezone.now()
    rows = []
    for run in runs:
        if not run.settle():
            continue
        if run.failure is not None:
            cancel_open_tasks(run.id, now)
        rows.append((run.id, run.status, run.unfinished, now if run.ended else None, run.failure))
    update_from_values(
        EXECUTION,
        columns=[
            ("v_id", "uuid"),
            ("v_status", "text"),
            ("v_unfinished", "int"),
            ("v_finished", "timestamp"),
            ("v_error", "json"),
        ],
        rows=rows,
        assignments="status = v.v_status, unfinished_tasks = v.v_unfinished, "
        "finished_at = v.v_finished, error = v.v_error",
        where=f"{EXECUTION}.id = v.v_id",
    )
    return [str(row[0]) for row in rows if row[3] is not None]


OUTCOME_COLUMNS = [
    ("v_task", "int"),
    ("v_execution", "uuid"),
    ("v_attempt", "int"),
    ("v_status", "text"),
    ("v_output", "json"),
    ("v_error", "json"),
    ("v_started", "timestamp"),
    ("v_finished", "timestamp"),
    ("v_worker", "text"),
]
OUTCOME_ASSIGNMENTS = (
    "status = v.v_status, output = v.v_output, error = v.v_error, "
    "started_at = v.v_started, finished_at = v.v_finished, worker = v.v_worker"
)


def _outcome_fence() -> str:
    """Fencing: only the current attempt of a task still QUEUED or RUNNING is recorded. The task
    is found by primary key; its execution is compared null-safely, which no index serves, so a
    planner without statistics cannot pick the execution's index and filter thousands of
    sibling tasks for every completion (SQLite spells it `IS`)."""
    same = "IS NOT DISTINCT FROM" if connection.vendor == "postgresql" else "IS"
    return (
        f"{TASKRUN}.id = v.v_task AND {TASKRUN}.execution_id {same} v.v_execution "
        f"AND {TASKRUN}.attempt = v.v_attempt AND {TASKRUN}.status IN ('{TaskRun.Status.QUEUED}', '{TaskRun.Status.RUNNING}')"
    )


def _outcome_rows(completions: list[CompletionMessage]) -> list[tuple]:
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


def _record_outcomes(completions: list[CompletionMessage]) -> dict[tuple[int, int], tuple[int, dict]]:
    """Fenced update of the outcomes of live executions.
    Returns {(task id, attempt): (retry_base, resolved config)} for the accepted ones."""
    returned = update_from_values(
        TASKRUN,
        columns=OUTCOME_COLUMNS,
        rows=_outcome_rows(completions),
        assignments=OUTCOME_ASSIGNMENTS,
        where=_outcome_fence(),
        returning="id, attempt, retry_base, config",
    )
    return {(pk, attempt): (retry_base, from_db_json(config)) for pk, attempt, retry_base, config in returned}


def _release_children(done: list[tuple[Run, str]]) -> list[tuple[Run, str, int, int]]:
    """Decrement the dependency counters of the children of `done`; return those now at zero."""
    counts: Counter = Counter()
    runs: dict[str, Run] = {}
    for run, node_id in done:
        runs[str(run.id)] = run
        for child in run.dag.children[node_id]:
            counts[(str(run.id), child)] += 1
    returned = update_from_values(
        TASKRUN,
        columns=[("v_execution", "uuid"), ("v_node", "text"), ("v_count", "int")],
        rows=[(execution_id, node_id, n) for (execution_id, node_id), n in counts.items()],
        assignments="pending_dependencies = pending_dependencies - v.v_count",
        where=f"{TASKRUN}.execution_id = v.v_execution AND {TASKRUN}.node_id = v.v_node",
        returning="id, execution_id, node_id, pending_dependencies, status, attempt",
    )
    return [
        (runs[str(uuid.UUID(str(execution_id)))], node_id, pk, attempt)
        for pk, execution_id, node_id, pending, status, attempt in returned
        if pending == 0 and status == TaskRun.Status.PENDING
    ]


def _mark_queued(queued: list[tuple[Run, str, int, int, dict]]) -> list[TaskMessage]:
    """Mark ready nodes QUEUED with their resolved config and next attempt (their rows are locked
    by this transaction, so the attempt is known without reading it back); build their messages."""
    if not queued:
        return []
    now = timezone.now()
    update_from_values(
        TASKRUN,
        columns=[("v_task", "int"), ("v_attempt", "int"), ("v_config", "json"), ("v_queued", "timestamp")],
        rows=[(pk, attempt, config, now) for _, _, pk, attempt, config in queued],
        assignments=f"status = '{TaskRun.Status.QUEUED}', attempt = v.v_attempt, config = v.v_config, queued_at = v.v_queued",
        where=f"{TASKRUN}.id = v.v_task",
    )
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


def _count_outcomes(runs: dict[str, Run], recorded: list[CompletionMessage]) -> None:
    for completion in recorded:
        handler = runs[completion.execution_id].dag.nodes[completion.node_id].handler
        outcome = "ok" if completion.ok else (completion.error or {}).get("category", "unknown")
        metrics.TASK_OUTCOMES.labels(handler, outcome).inc()
        if completion.started_at and completion.finished_at:
            metrics.TASK_DURATION.labels(handler).observe(
                max(0.0, completion.finished_at - completion.started_at)
            )


def _mark_skipped(skipped: list[tuple[Run, str, int]]) -> None:
    if not skipped:
        return
    TaskRun.objects.filter(id__in=[pk for _, _, pk in skipped]).update(
        status=TaskRun.Status.SKIPPED, finished_at=timezone.now()
    )
    for run, _, _ in skipped:
        run.node_skipped()
