"""Every raw SQL statement of the engine, the services and the selectors, by name.

Two kinds live here:
- **The state transitions** of tasks and executions, each written once as a `SetUpdate`:
  `outcomes_recorded` (fenced), `children_released`, `TASKS_QUEUED`, `RETRIES_QUEUED`,
  `EXECUTIONS_COUNTED` and `EXECUTION_STARTED`. Python decides (conditions, templates, retry
  policy); these write. The general path runs each alone on the rows Python decided
  (`record_outcomes`, `release_children`, ...); the one-statement paths chain the same
  definitions as data-modifying CTEs (`outcomes_and_children_at_once`,
  `completions_commit_at_once`, `execution_start_at_once`), so the two cannot drift apart.
- **Reads and inserts on hot paths**, where compiling the ORM's query cost more than running it.

Statuses are the models' enums. Every function runs on PostgreSQL and SQLite; where the spelling
differs the SQLite twin is next to it. The one-statement paths have none: SQLite has no
data-modifying CTEs, and it takes the general path, whose effects are the same. Raw SQL anywhere
else in the apps fails tests/test_raw_sql_home.py.
"""

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection, models, transaction

from workflows.bulk_sql import (
    SetUpdate,
    db_uuid,
    from_db_json,
    hot_cursor,
    insert_rows,
    model_columns,
    rows_table,
    sqlite_chunks,
    transaction_in_one_round_trip,
    update_from_values,
)
from workflows.models import Execution, TaskRun, Workflow

TASKRUN = TaskRun._meta.db_table
EXECUTION = Execution._meta.db_table
WORKFLOW = Workflow._meta.db_table

PENDING, QUEUED, RUNNING = TaskRun.Status.PENDING, TaskRun.Status.QUEUED, TaskRun.Status.RUNNING
COMPLETED = TaskRun.Status.COMPLETED


# ---------------------------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------------------------

# A completion, as `outcomes_recorded` takes it.
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


def outcomes_recorded() -> SetUpdate:
    """A task's outcome (COMPLETED or FAILED), fenced: only the current attempt of a task still
    QUEUED or RUNNING, of a RUNNING execution, is recorded; anything else is a duplicate or a
    late attempt and changes nothing. The task is found by primary key; its execution is compared
    null-safely, which no index serves, so a planner without statistics cannot pick the
    execution's index and filter thousands of sibling tasks per completion. The execution's
    status is a scalar subquery, one primary-key lookup per row (as EXISTS, the planner hashed
    every RUNNING execution, O(executions) per batch). SQLite twin: `IS` for the null-safe
    comparison."""
    same = "IS NOT DISTINCT FROM" if connection.vendor == "postgresql" else "IS"
    return SetUpdate(
        TASKRUN,
        "v",
        assignments="status = v.v_status, output = v.v_output, error = v.v_error, "
        "started_at = v.v_started, finished_at = v.v_finished, worker = v.v_worker",
        where=f"{TASKRUN}.id = v.v_task AND {TASKRUN}.execution_id {same} v.v_execution "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"AND {TASKRUN}.attempt = v.v_attempt AND {TASKRUN}.status IN ('{QUEUED}', '{RUNNING}') "
        f"AND (SELECT x.status FROM {EXECUTION} x WHERE x.id = v.v_execution) = '{Execution.Status.RUNNING}'",
        returning=f"{TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.attempt, {TASKRUN}.retry_base, "
        f"{TASKRUN}.config, {TASKRUN}.status",
    )


def _queue(config: str, queued_at: str, *, when: str | None = None) -> str:
    """The assignments that queue a task: its next attempt, with `config`, due at `queued_at`;
    with `when`, only on the rows where that holds (the others keep their values)."""
    values = {
        "status": f"'{QUEUED}'",
        "attempt": "attempt + 1",
        "config": config,
        "queued_at": queued_at,
        "finished_at": "NULL",
    }
    if when is None:
        return ", ".join(f"{column} = {value}" for column, value in values.items())
    return ", ".join(
        f"{column} = CASE WHEN {when} THEN {value} ELSE {column} END" for column, value in values.items()
    )


# Children to release, as `children_released` takes them: r_count of their parents just
# finished; with queue_ready, the config and time to queue the ready ones with.
RELEASE_COLUMNS = [("r_execution", "uuid"), ("r_node", "text"), ("r_count", "int")]


def children_released(*, queue_ready: bool) -> SetUpdate:
    """A task's count of unfinished parents drops by `r.r_count`; it is ready when that reaches
    zero while it is PENDING. Without `queue_ready`, Python then decides each ready one
    (`engine.advance`: condition, templates); with it, the ready ones are queued in the same
    statement with `r.r_config` at `r.r_queued` (children without conditions or templates).
    Returns id, execution_id, node_id, attempt, and `ready` (queued, with `queue_ready`)."""
    assignments = "pending_dependencies = pending_dependencies - r.r_count"
    if queue_ready:  # SET sees the row as it was before this statement
        ready_before = f"pending_dependencies = r.r_count AND status = '{PENDING}'"
        assignments += ", " + _queue("r.r_config", "r.r_queued", when=ready_before)
    return SetUpdate(
        TASKRUN,
        "r",
        assignments=assignments,
        where=f"{TASKRUN}.execution_id = r.r_execution AND {TASKRUN}.node_id = r.r_node",
        returning=f"{TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.node_id, {TASKRUN}.attempt, "
        f"({TASKRUN}.pending_dependencies = 0 AND {TASKRUN}.status = '{QUEUED if queue_ready else PENDING}') "
        "AS ready",
    )


# Tasks to queue, as TASKS_QUEUED takes them.
QUEUE_COLUMNS = [("q_execution", "uuid"), ("q_node", "text"), ("q_config", "json"), ("q_queued", "timestamp")]
# Ready tasks Python decided to run: PENDING becomes QUEUED, next attempt, resolved config.
TASKS_QUEUED = SetUpdate(
    TASKRUN,
    "q",
    assignments=_queue("q.q_config", "q.q_queued"),
    where=f"{TASKRUN}.execution_id = q.q_execution AND {TASKRUN}.node_id = q.q_node "
    f"AND {TASKRUN}.status = '{PENDING}'",
    returning=f"{TASKRUN}.id, {TASKRUN}.node_id, {TASKRUN}.attempt",
)
# A failed attempt to retry, or a mapped node's item run again: queued with the same config,
# due at `q_due`.
RETRIES_QUEUED = SetUpdate(
    TASKRUN,
    "q",
    assignments=_queue("config", "q.q_due"),
    where=f"{TASKRUN}.id = q.q_task",
    returning=f"{TASKRUN}.id, {TASKRUN}.attempt, {TASKRUN}.config",
)
RETRY_COLUMNS = [("q_task", "int"), ("q_due", "timestamp")]

# Executions to count, as EXECUTIONS_COUNTED takes them.
COUNT_COLUMNS = [
    ("c_execution", "uuid"),
    ("c_finished", "int"),
    ("c_added", "int"),
    ("c_error", "json"),
    ("c_now", "timestamp"),
]
_LEFT = "unfinished_tasks + c.c_added"
_ENDS = f"c.c_error IS NOT NULL OR {_LEFT} <= c.c_finished"
# A RUNNING execution learns that `c_finished` of its tasks finished (completed or skipped), that
# `c_added` tasks were added (a mapped node's items), or that it failed (`c_error`). It ends
# FAILED on an error, COMPLETED when nothing is left.
EXECUTIONS_COUNTED = SetUpdate(
    EXECUTION,
    "c",
    assignments=f"status = CASE WHEN c.c_error IS NOT NULL THEN '{Execution.Status.FAILED}' "
    f"WHEN {_LEFT} <= c.c_finished THEN '{Execution.Status.COMPLETED}' ELSE status END, "
    f"unfinished_tasks = CASE WHEN c.c_error IS NULL AND {_LEFT} > c.c_finished "
    f"THEN {_LEFT} - c.c_finished ELSE 0 END, "
    "total_tasks = total_tasks + c.c_added, "
    f"finished_at = CASE WHEN {_ENDS} THEN c.c_now ELSE finished_at END, "
    "error = coalesce(c.c_error, error), "
    # A failure's stop flag goes out with the orchestrator's dispatch; marked too, so the reaper
    # sends it again if that publish is lost with its orchestrator (stop_flags.py).
    "stop_flag_stale = stop_flag_stale OR c.c_error IS NOT NULL",
    where=f"{EXECUTION}.id = c.c_execution AND {EXECUTION}.status = '{Execution.Status.RUNNING}'",
    returning=f"{EXECUTION}.id, {EXECUTION}.status, {EXECUTION}.unfinished_tasks",
)

# Trigger: a PENDING execution becomes RUNNING with its params and deadline.
EXECUTION_STARTED = (
    f"UPDATE {EXECUTION} SET status = '{Execution.Status.RUNNING}', started_at = %s, params = %s, "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
    f"deadline = %s WHERE id = %s AND status = '{Execution.Status.PENDING}' RETURNING id"
)


# What a new task run is written with (the rest are the columns' defaults and NULLs).
NEW_TASK_RUN_FIELDS = (
    "execution",
    "node_id",
    "handler",
    "status",
    "attempt",
    "retry_base",
    "pending_dependencies",
    "worker",
)
TASK_RUN_COLUMNS = model_columns(TaskRun, *NEW_TASK_RUN_FIELDS)
# A mapped node's items: new task runs, QUEUED from the start with their resolved configs.
MAP_ITEM_COLUMNS = model_columns(TaskRun, *NEW_TASK_RUN_FIELDS, "config", "queued_at")
# A node the engine runs itself, not a worker: RUNNING (written by the engine), with its next
# attempt and resolved config (NULL for a mapped node), waiting for `m_items` items (a mapped
# node's; 0 for a sub-workflow node, which waits for its child).
ENGINE_RUN_STARTED = SetUpdate(
    TASKRUN,
    "m",
    assignments=f"status = '{RUNNING}', attempt = attempt + 1, pending_dependencies = m.m_items, "
    "config = m.m_config, queued_at = m.m_now",
    where=f"{TASKRUN}.id = m.m_task AND {TASKRUN}.status = '{PENDING}'",
)
ENGINE_RUN_COLUMNS = [("m_task", "int"), ("m_items", "int"), ("m_config", "json"), ("m_now", "timestamp")]
# Items of RUNNING mapped nodes finished: each node's count of items left drops by `m_count`.
# Returns id, execution_id, node_id and `done` (no item left).
MAP_ITEMS_DONE = SetUpdate(
    TASKRUN,
    "m",
    assignments="pending_dependencies = pending_dependencies - m.m_count",
    where=f"{TASKRUN}.execution_id = m.m_execution AND {TASKRUN}.node_id = m.m_node "
    f"AND {TASKRUN}.status = '{RUNNING}'",
    returning=f"{TASKRUN}.id, {TASKRUN}.execution_id, {TASKRUN}.node_id, "
    f"({TASKRUN}.pending_dependencies = 0) AS done",
)
MAP_ITEMS_DONE_COLUMNS = [("m_execution", "uuid"), ("m_node", "text"), ("m_count", "int")]
# A mapped node is COMPLETED with its output, the list of its items' outputs.
MAP_COMPLETED = SetUpdate(
    TASKRUN,
    "m",
    assignments=f"status = '{COMPLETED}', output = m.m_output, finished_at = m.m_now",
    where=f"{TASKRUN}.id = m.m_task",
)
MAP_COMPLETED_COLUMNS = [("m_task", "int"), ("m_output", "json"), ("m_now", "timestamp")]


def insert_map_items(rows: Sequence[tuple]) -> dict[tuple[str, str], int]:
    """INSERT a mapped node's items (MAP_ITEM_COLUMNS rows); returns {(execution id, node id):
    task id}."""
    returned = insert_rows(
        TASKRUN,
        columns=MAP_ITEM_COLUMNS,
        rows=rows,
        returning="id, execution_id, node_id",
    )
    return {(str(uuid.UUID(str(execution_id))), node_id): pk for pk, execution_id, node_id in returned}


def start_engine_run(rows: Sequence[tuple]) -> None:
    update_from_values(ENGINE_RUN_STARTED, columns=ENGINE_RUN_COLUMNS, rows=rows, fetch=False)


def map_items_done(rows: Sequence[tuple]) -> list[tuple]:
    return update_from_values(MAP_ITEMS_DONE, columns=MAP_ITEMS_DONE_COLUMNS, rows=rows)


def complete_maps(rows: Sequence[tuple]) -> None:
    update_from_values(MAP_COMPLETED, columns=MAP_COMPLETED_COLUMNS, rows=rows, fetch=False)


def record_outcomes(rows: Sequence[tuple]) -> list[tuple]:
    """`outcomes_recorded` on OUTCOME_COLUMNS rows; returns (id, attempt, retry_base, config) of
    the recorded ones."""
    recorded = update_from_values(outcomes_recorded(), columns=OUTCOME_COLUMNS, rows=rows)
    return [(pk, attempt, retry_base, config) for pk, _, attempt, retry_base, config, _ in recorded]


def release_children(rows: Sequence[tuple]) -> list[tuple]:
    """`children_released` (without queueing) on RELEASE_COLUMNS rows; returns (id,
    execution_id, node_id, attempt, ready) of each child."""
    return update_from_values(children_released(queue_ready=False), columns=RELEASE_COLUMNS, rows=rows)


def queue_tasks(rows: Sequence[tuple]) -> None:
    """TASKS_QUEUED on QUEUE_COLUMNS rows; nothing read back (the rows are locked, so the caller
    knows each next attempt), so in a pipeline it costs no round trip."""
    update_from_values(TASKS_QUEUED, columns=QUEUE_COLUMNS, rows=rows, fetch=False)


def queue_retries(rows: Sequence[tuple]) -> dict[int, tuple[int, Any]]:
    """RETRIES_QUEUED on RETRY_COLUMNS rows; returns {task id: (its new attempt, its config)}."""
    returned = update_from_values(RETRIES_QUEUED, columns=RETRY_COLUMNS, rows=rows)
    return {pk: (attempt, from_db_json(config)) for pk, attempt, config in returned}


def count_finished(rows: Sequence[tuple]) -> list[tuple]:
    """EXECUTIONS_COUNTED on COUNT_COLUMNS rows; returns (id, status, unfinished) of each."""
    return update_from_values(EXECUTIONS_COUNTED, columns=COUNT_COLUMNS, rows=rows)


def start_execution(execution_id: uuid.UUID, params: dict, deadline: datetime | None, now: datetime) -> bool:
    """EXECUTION_STARTED alone; False if the execution was not PENDING."""
    with hot_cursor() as cursor:
        cursor.execute(EXECUTION_STARTED, _started_params(execution_id, params, deadline, now))
        return cursor.fetchone() is not None


def _started_params(execution_id: uuid.UUID, params: dict, deadline: datetime | None, now: datetime) -> list:
    return [
        _prepared(Execution, "started_at", now),
        _prepared(Execution, "params", params),
        _prepared(Execution, "deadline", deadline),
        db_uuid(execution_id),
    ]


def _prepared(model: type[models.Model], name: str, value: Any) -> Any:
    """`value` as the model's field writes it to this backend."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


# ---------------------------------------------------------------------------------------------
# The one-statement paths (PostgreSQL): the transitions above, chained as CTEs
# ---------------------------------------------------------------------------------------------

# A parent's edge to a child it may release, for the one-statement paths: (parent task id,
# execution, child node[, child's static config]).
EDGE_COLUMNS = [("e_parent", "int"), ("e_execution", "uuid"), ("e_node", "text")]
EDGE_COLUMNS_WITH_CONFIG = [*EDGE_COLUMNS, ("e_config", "json")]


class AtOnce(NamedTuple):
    """What a one-statement completion batch returns: the locked executions' rows (as
    `select_runs`), recorded outcomes (id, attempt, retry_base, config), released children
    (id, execution_id, node_id, attempt, ready) and counted executions (id, status)."""

    locked: list[tuple]
    recorded: list[tuple]
    released: list[tuple]
    counted: list[tuple]


def _released_by_recorded(edges: str, *, with_config: bool) -> str:
    """The rows `children_released` takes, from the edges of this statement's recorded
    successes: one per child, r_count of its parents that completed here."""
    config = ", (array_agg(e_config))[1] AS r_config, %s::timestamptz AS r_queued" if with_config else ""
    return (
        f"(SELECT e_execution AS r_execution, e_node AS r_node, count(*) AS r_count{config} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"FROM {edges} JOIN recorded ON recorded.id = e.e_parent AND recorded.status = '{COMPLETED}' "
        "GROUP BY e_execution, e_node) r"
    )


# Every row the one-statement completion paths return: (kind, id, attempt, retry_base, config,
# execution_id, node_id, ready); kind 'o' a recorded outcome, 'c' a released child, 'x' a counted
# execution (its status in node_id's place).
_RECORDED_ROWS = (
    "SELECT 'o', id, attempt, retry_base, config, NULL::uuid, NULL::text, NULL::boolean FROM recorded"
)
_RELEASED_ROWS = "SELECT 'c', id, attempt, NULL, NULL, execution_id, node_id, ready FROM released"


def outcomes_and_children_at_once(
    execution_ids: list[uuid.UUID], outcomes: list[tuple], edges: list[tuple]
) -> AtOnce:
    """Lock the executions, record the outcomes and release the children of the recorded
    successes, in one round trip (in the caller's transaction). Python then decides the ready
    children and the failures, as on the general path."""
    outcome_table, outcome_params = rows_table(OUTCOME_COLUMNS, outcomes, alias="v")
    edge_table, edge_params = rows_table(EDGE_COLUMNS, edges, alias="e")
    return _lock_then(
        execution_ids,
        f"WITH recorded AS ({outcomes_recorded().sql(outcome_table)}), "  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"released AS ({children_released(queue_ready=False).sql(_released_by_recorded(edge_table, with_config=False))}) "
        f"{_RECORDED_ROWS} UNION ALL {_RELEASED_ROWS}",
        outcome_params + edge_params,
    )


def completions_commit_at_once(
    execution_ids: list[uuid.UUID], outcomes: list[tuple], edges: list[tuple], now: datetime
) -> AtOnce:
    """A batch of successes whose children are all static, as one transaction in one round
    trip: BEGIN, the lock, one statement (outcomes recorded, children released and the ready
    ones queued, executions counted), COMMIT."""
    outcome_table, outcome_params = rows_table(OUTCOME_COLUMNS, outcomes, alias="v")
    edge_table, edge_params = rows_table(EDGE_COLUMNS_WITH_CONFIG, edges, alias="e")
    counted_source = (
        "(SELECT execution_id AS c_execution, count(*) AS c_finished, 0 AS c_added, NULL::jsonb AS c_error, "
        "%s::timestamptz AS c_now FROM recorded GROUP BY execution_id) c"
    )
    return _lock_then(
        execution_ids,
        f"WITH recorded AS ({outcomes_recorded().sql(outcome_table)}), "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"released AS ({children_released(queue_ready=True).sql(_released_by_recorded(edge_table, with_config=True))}), "
        f"counted AS ({EXECUTIONS_COUNTED.sql(counted_source)}) "
        f"{_RECORDED_ROWS} UNION ALL {_RELEASED_ROWS} WHERE ready "
        "UNION ALL SELECT 'x', NULL, NULL, NULL, NULL, id, status, NULL FROM counted",
        [*outcome_params, now, *edge_params, now],
    )


def _lock_then(execution_ids: list[uuid.UUID], sql: str, params: list) -> AtOnce:
    """Lock the executions (in id order), then run one statement, pipelined after the lock: one
    round trip, in a transaction of its own when called outside one, otherwise in the caller's."""
    with hot_cursor() as locking, hot_cursor() as cursor:
        with transaction_in_one_round_trip():
            select_runs(locking, sorted(set(execution_ids)), lock=True)
            cursor.execute(sql, params)
        rows = cursor.fetchall()
        return AtOnce(
            locking.fetchall(),
            recorded=[row[1:5] for row in rows if row[0] == "o"],
            released=[(row[1], row[5], row[6], row[2], row[7]) for row in rows if row[0] == "c"],
            counted=[(row[5], row[6]) for row in rows if row[0] == "x"],
        )


def execution_start_at_once(
    execution_id: uuid.UUID, params: dict, deadline: datetime | None, now: datetime, roots: list[tuple]
) -> list[tuple]:
    """Trigger in one statement, transaction included: EXECUTION_STARTED, then TASKS_QUEUED for
    `roots` ((node id, resolved config) each). Returns (task id, node id, attempt) of the queued
    roots; no rows if the execution was not PENDING."""
    root_table, root_params = rows_table([("r_node", "text"), ("r_config", "json")], roots, alias="r")
    source = (
        "(SELECT started.id AS q_execution, r.r_node AS q_node, r.r_config AS q_config, "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"%s::timestamptz AS q_queued FROM {root_table}, started) q"
    )
    with hot_cursor() as cursor:
        with transaction_in_one_round_trip():
            cursor.execute(
                f"WITH started AS ({EXECUTION_STARTED}), queued AS ({TASKS_QUEUED.sql(source)}) "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
                "SELECT queued.id, queued.node_id, queued.attempt FROM started LEFT JOIN queued ON true",
                [*_started_params(execution_id, params, deadline, now), now, *root_params],
            )
        return cursor.fetchall()


# ---------------------------------------------------------------------------------------------
# Reads and inserts on hot paths
# ---------------------------------------------------------------------------------------------


def database_ping() -> None:
    """One round trip to the database (/health): raises if it cannot be reached."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def select_runs(cursor, ids: list[uuid.UUID], *, lock: bool) -> None:
    """Send the executions' SELECT (FOR UPDATE), in id order; the caller reads the cursor when it
    needs the rows. This runs first in every orchestrator transaction. SQLite twin: an IN list,
    and no FOR UPDATE (SQLite locks the whole database for a write transaction)."""
    if connection.vendor == "postgresql":
        where, params = "id = ANY(%s)", [ids]
    else:
        where, params = f"id IN ({', '.join(['%s'] * len(ids))})", [db_uuid(i) for i in ids]
    sql = (
        f"SELECT id, status, params, unfinished_tasks, workflow_id, deadline, owner_id, parent_task_id FROM {EXECUTION} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"WHERE {where} ORDER BY id"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    cursor.execute(sql, params)


def executions_select(ids: list[uuid.UUID], *, lock: bool) -> list[tuple]:
    """`select_runs`, read at once."""
    if not ids:
        return []
    with hot_cursor() as cursor:
        select_runs(cursor, ids, lock=lock)
        return cursor.fetchall()


def completed_outputs(execution_id: uuid.UUID, node_ids: Sequence[str]) -> list[tuple[str, Any]]:
    """(node id, output) of those of an execution's nodes that COMPLETED. On PostgreSQL the ids
    travel as one array: an IN list of a fan-in's 50,000 parents took 3.5 times as long to build
    and bind as this takes to run. SQLite twin: IN lists of `sqlite_chunks` ids."""
    sql = f"SELECT node_id, output FROM {TASKRUN} WHERE execution_id = %s AND status = %s AND "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
    head = [db_uuid(execution_id), TaskRun.Status.COMPLETED]
    if connection.vendor == "postgresql":
        queries = [(sql + "node_id = ANY(%s)", [*head, list(node_ids)])]
    else:
        queries = [
            (sql + f"node_id IN ({', '.join(['%s'] * len(chunk))})", [*head, *chunk])
            for chunk in sqlite_chunks(node_ids)
        ]
    rows = []
    with hot_cursor() as cursor:
        for query, params in queries:
            cursor.execute(query, params)
            rows += cursor.fetchall()
    return [(node_id, from_db_json(output)) for node_id, output in rows]


def workflow_definition(workflow_id: uuid.UUID) -> tuple[Any, str]:
    """(dag definition, name) of a workflow."""
    with hot_cursor() as cursor:
        cursor.execute(f"SELECT dag, name FROM {WORKFLOW} WHERE id = %s", [db_uuid(workflow_id)])  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        return cursor.fetchone()


def trigger_target(execution_id: uuid.UUID) -> tuple | None:
    """(workflow id, owner id, workflow timeout) of an execution, or None."""
    with hot_cursor() as cursor:
        cursor.execute(
            f"SELECT e.workflow_id, e.owner_id, w.timeout_seconds FROM {EXECUTION} e "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            f"JOIN {WORKFLOW} w ON w.id = e.workflow_id WHERE e.id = %s",
            [db_uuid(execution_id)],
        )
        return cursor.fetchone()


def execution_status_and_owner(execution_id: uuid.UUID) -> tuple | None:
    with hot_cursor() as cursor:
        cursor.execute(f"SELECT status, owner_id FROM {EXECUTION} WHERE id = %s", [db_uuid(execution_id)])  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        return cursor.fetchone()


def execution_status_row(execution_id: uuid.UUID) -> tuple | None:
    """The polled status endpoint's one query: (workflow_id, workflow name, status, params,
    error, total_tasks, created_at, started_at, finished_at, deadline, owner_id, nodes, parent
    execution id, parent node id), nodes a JSON list of [node_id, status, task id, attempt]
    aggregated by the database; the parent is a sub-workflow's (else NULLs). SQLite twin:
    json_group_array over an ordered subquery."""
    if connection.vendor == "postgresql":
        nodes = (
            "(SELECT coalesce(json_agg(json_build_array(t.node_id, t.status, t.id, t.attempt) ORDER BY t.id), "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            f"'[]'::json) FROM {TASKRUN} t WHERE t.execution_id = e.id)"
        )
    else:
        nodes = (
            "(SELECT json_group_array(json_array(t.node_id, t.status, t.id, t.attempt)) FROM "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            f"(SELECT node_id, status, id, attempt FROM {TASKRUN} WHERE execution_id = e.id ORDER BY id) t)"
        )
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT e.workflow_id, w.name, e.status, e.params, e.error, e.total_tasks, e.created_at, "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            f"e.started_at, e.finished_at, e.deadline, e.owner_id, {nodes}, p.execution_id, p.node_id "
            f"FROM {EXECUTION} e JOIN {WORKFLOW} w ON w.id = e.workflow_id "
            f"LEFT JOIN {TASKRUN} p ON p.id = e.parent_task_id WHERE e.id = %s",
            [db_uuid(execution_id)],
        )
        return cursor.fetchone()


def _open_executions_allowed(owner_id: int | None, cap: int) -> tuple[str, list]:
    """A query answering whether `owner_id` may create another execution: fewer than `cap`
    (0: no cap) of theirs PENDING or RUNNING. A count bounded by the cap, on the partial index
    `execution_owner_open`. The statuses are literals, not parameters: a prepared statement's
    generic plan can then use the partial index instead of walking all the owner's executions."""
    cap = cap if owner_id is not None else 0
    return (
        f"SELECT %s OR count(*) < %s FROM (SELECT 1 FROM {EXECUTION} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
        f"WHERE owner_id = %s AND status IN ('{Execution.Status.PENDING}', '{Execution.Status.RUNNING}') "
        "LIMIT %s) AS open_executions",
        [not cap, cap, owner_id, cap],
    )


def insert_new(
    instances: list[models.Model],
    *,
    owner_id: int | None,
    cap: int,
    task_runs: list[tuple],
) -> bool:
    """INSERT new instances (a workflow and its execution, or an execution) and their task runs
    (TASK_RUN_COLUMNS rows),
    if the owner has fewer than `cap` open executions (see `_open_executions_allowed`); False,
    and nothing written, if not. On PostgreSQL one statement of data-modifying CTEs (atomic on
    its own: no BEGIN and COMMIT round trips); the SQLite twin runs the same checks and inserts
    in one transaction."""
    allowed, allowed_params = _open_executions_allowed(owner_id, cap)
    if connection.vendor == "postgresql":
        inserts = [_insert_sql(instance, when="(SELECT ok FROM allowed)") for instance in instances]
        table, params = rows_table(TASK_RUN_COLUMNS, task_runs, alias="t")
        ctes = ", ".join(f"new_{n} AS ({sql})" for n, (sql, _) in enumerate(inserts))
        with hot_cursor() as cursor:
            cursor.execute(
                f"WITH allowed (ok) AS ({allowed}), {ctes}, new_task_runs AS (INSERT INTO {TASKRUN} "  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
                f"({', '.join(name for name, _ in TASK_RUN_COLUMNS)}) SELECT * FROM {table} "
                "WHERE (SELECT ok FROM allowed)) SELECT ok FROM allowed",
                [*allowed_params, *(p for _, values in inserts for p in values), *params],
            )
            # Read, not a rowcount: inside a pipeline (an orchestrator starting a sub-workflow)
            # the rowcount is not known until the next sync.
            return cursor.fetchone()[0]
    # Refused after the atomic block, as on PostgreSQL: raised inside it, the error would mark a
    # caller's enclosing transaction (savepoint=False) as broken.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(allowed, allowed_params)
        if not cursor.fetchone()[0]:
            return False
        for sql, values in (_insert_sql(instance) for instance in instances):
            cursor.execute(sql, values)
        insert_rows(TASKRUN, columns=TASK_RUN_COLUMNS, rows=task_runs)
    return True


def _insert_sql(instance: models.Model, *, when: str | None = None) -> tuple[str, list]:
    """The INSERT Model.save() would run for a new instance with a client-side primary key,
    defaults and auto_now_add included; with `when`, only if that SQL condition holds."""
    fields = instance._meta.local_concrete_fields
    return (
        _insert_text(type(instance), when),
        [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields],
    )


@functools.cache
def _insert_text(model: type[models.Model], when: str | None) -> str:
    """Built once per model: the column types of the casts cost more to look up than the INSERT
    takes to run. With `when` (PostgreSQL) the values are cast, as a SELECT does not take its
    types from the target columns the way VALUES does."""
    quote = connection.ops.quote_name
    fields = model._meta.local_concrete_fields
    if when is None:
        source = f"VALUES ({', '.join(['%s'] * len(fields))})"
    else:
        source = f"SELECT {', '.join(f'%s::{f.cast_db_type(connection)}' for f in fields)} WHERE {when}"
    columns = ", ".join(quote(f.column) for f in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {source}"  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
