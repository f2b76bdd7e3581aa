"""The machinery under `statements.py`, portable between PostgreSQL and SQLite: one state
transition as a `SetUpdate` run over rows from Python (`update_from_values`), INSERT ... SELECT
<rows>, row tables, prepared cursors, pipelined transactions, and reading raw values back.

The orchestrator changes many rows per batch, each with its own values; one statement per batch
instead of one per row is what keeps the hot path O(round trips per batch), not per task. On
PostgreSQL the rows travel as one JSON document (`rows_table`); on SQLite as a VALUES list.
"""

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from django.db import connection, models
from django.utils.dateparse import parse_datetime

# Column kinds and their PostgreSQL types, so the rows of a batch are typed explicitly.
POSTGRES_TYPES = {
    "int": "bigint",
    "text": "text",
    "json": "jsonb",
    "uuid": "uuid",
    "timestamp": "timestamptz",
}
# The kind of column each model field is stored as, for the row tables below.
KIND_OF_FIELD = {
    "AutoField": "int",
    "BigAutoField": "int",
    "BigIntegerField": "int",
    "IntegerField": "int",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "CharField": "text",
    "TextField": "text",
    "JSONField": "json",
    "UUIDField": "uuid",
    "DateTimeField": "timestamp",
}


def model_columns(model: type[models.Model], *fields: str) -> list[tuple[str, str]]:
    """(column, kind) of the named fields, as `insert_rows` and `rows_table` take them: names and
    types come from the model, so a renamed or retyped field cannot drift from the SQL."""
    columns = []
    for name in fields:
        field = model._meta.get_field(name)
        stored = field.target_field if field.is_relation else field
        columns.append((field.column, KIND_OF_FIELD[stored.get_internal_type()]))
    return columns


# The hot statements join a batch of rows to tables that can be huge; each has an index path.
# Before the planner has statistics (a new database, tables that just grew) it may pick a
# sequential scan per row of the batch instead, and a prepared plan keeps that choice.
INDEX_PATHS_ONLY = "SET LOCAL enable_seqscan = off"
# SQLite caps a statement at 32,766 parameters.
SQLITE_CHUNK_ROWS = 1000


@dataclass(frozen=True)
class SetUpdate:
    """`UPDATE table SET assignments FROM <source> WHERE where RETURNING returning`: one state
    transition, written once and run either alone on rows from Python (`update_from_values`) or
    as a CTE of a larger statement on rows another CTE produced (`sql`). `assignments` name the
    table's own columns unqualified and the source's as `alias.column`; `where` qualifies the
    table's as `{table}.column`."""

    table: str
    alias: str
    assignments: str
    where: str
    returning: str = ""

    def sql(self, source: str, *, returning: bool = True) -> str:
        """The statement over `source`, a FROM item that must be named `alias`."""
        tail = f" RETURNING {self.returning}" if returning and self.returning else ""
        return f"UPDATE {self.table} SET {self.assignments} FROM {source} WHERE {self.where}{tail}"  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters


def update_from_values(
    update: SetUpdate,
    *,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    fetch: bool = True,
) -> list[tuple]:
    """Run `update` over rows from Python, each row one tuple of `columns` ((name, kind) pairs).
    Without `fetch` nothing is read back, so in a pipeline it costs no round trip of its own.
    Only identifiers and expressions written in this codebase are interpolated; every value is a
    parameter."""
    if not rows:
        return []
    returning = fetch and bool(update.returning)
    with hot_cursor() as cursor:
        if connection.vendor == "postgresql":
            values, params = rows_table(columns, rows, alias=update.alias)
            cursor.execute(update.sql(values, returning=returning), params)
            return cursor.fetchall() if returning else []
        names = ", ".join(name for name, _ in columns)
        return _sqlite_in_chunks(
            cursor,
            columns,
            rows,
            lambda values: (
                f"WITH {update.alias} ({names}) AS ({values}) "  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
                + update.sql(update.alias, returning=returning)
            ),
            fetch=returning,
        )


def insert_rows(
    table: str, *, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], returning: str = ""
) -> list[tuple]:
    """INSERT many rows without model instances or ORM compilation (a 1,000-node submit);
    with `returning`, the inserted rows' columns (in no particular order)."""
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    tail = f" RETURNING {returning}" if returning else ""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values, params = rows_table(columns, rows, alias="v")
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {values}{tail}", params)  # noqa: S608  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            return cursor.fetchall() if returning else []
        return _sqlite_in_chunks(
            cursor,
            columns,
            rows,
            lambda values: f"INSERT INTO {table} ({names}) {values}{tail}",  # nosec B608  # identifiers from model _meta and constants; values are bound parameters
            fetch=bool(returning),
        )


def sqlite_chunks(rows: Sequence) -> Iterator[Sequence]:
    """`rows` in slices of SQLITE_CHUNK_ROWS, each few enough parameters for one SQLite statement."""
    for start in range(0, len(rows), SQLITE_CHUNK_ROWS):
        yield rows[start : start + SQLITE_CHUNK_ROWS]


def _sqlite_in_chunks(
    cursor, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], statement, *, fetch: bool
) -> list[tuple]:
    """SQLite: `statement(values)` once per chunk of SQLITE_CHUNK_ROWS rows, `values` the chunk
    as a VALUES list of parameters; the rows read back when `fetch`."""
    results: list[tuple] = []
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for chunk in sqlite_chunks(rows):
        cursor.execute(statement(f"VALUES {', '.join([row_sql] * len(chunk))}"), _flat(columns, chunk))
        if fetch:
            results.extend(cursor.fetchall())
    return results


def rows_table(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], *, alias: str
) -> tuple[str, list]:
    """PostgreSQL only: rows as a table to select from, `jsonb_to_recordset(%s) AS alias (name
    type, ...)`, and its one parameter, the rows as one JSON document. One json.dumps (in C)
    instead of adapting every value in Python, and a statement text that stays the same
    whatever the batch size, so it is prepared once. A JSON null reads as SQL NULL."""
    names = [name for name, _ in columns]
    definition = ", ".join(f"{name} {POSTGRES_TYPES[kind]}" for name, kind in columns)
    document = json.dumps(
        [dict(zip(names, row, strict=True)) for row in rows], separators=(",", ":"), default=_json_value
    )
    return f"jsonb_to_recordset(%s::jsonb) AS {alias} ({definition})", [document]


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{value.__class__.__name__} is not JSON serializable")


@contextmanager
def hot_cursor() -> Iterator[Any]:
    """A cursor for statements the hot path runs over and over with a constant text. On
    PostgreSQL it binds parameters server-side, so psycopg prepares each statement after a few
    executions and the server stops planning it again (planning cost more than executing them);
    Django's cursors bind client-side and are never prepared. Errors are Django's, as usual."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, PreparedCursor(connection.connection) as cursor:
        yield cursor


class PreparedCursor(psycopg.Cursor):
    """A migration that changes the type of a column a prepared statement returns makes the
    server refuse that statement ("cached plan must not change result type") on every
    connection that prepared it, for as long as the connection lives: forget this connection's
    prepared statements. Outside a transaction the refused statement did nothing, so it runs
    again at once; inside one, the rollback that follows clears them (psycopg does) and the
    caller's retry finds a working connection."""

    def execute(self, query, params=None, **kwargs):
        try:
            return super().execute(query, params, **kwargs)
        except psycopg.errors.FeatureNotSupported:
            if self.connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raise
            self.connection.execute("DEALLOCATE ALL")  # psycopg forgets its names with it
            return super().execute(query, params, **kwargs)


@contextmanager
def transaction_in_one_round_trip() -> Iterator[None]:
    """PostgreSQL only: a transaction sent as one pipeline, BEGIN and COMMIT included, whose
    results are read after it (from the cursors used inside), planned with index paths only
    (`INDEX_PATHS_ONLY`). Django's atomic() cannot do this: it toggles autocommit, and psycopg
    syncs a pipeline for that, twice. Run only raw statements inside; on any error the
    transaction is rolled back and the error is Django's. Inside a caller's transaction it
    simply takes part in it."""
    if connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    pg = connection.connection
    with connection.wrap_database_errors:
        try:
            with pg.pipeline():
                pg.execute("BEGIN")
                pg.execute(INDEX_PATHS_ONLY)
                yield
                pg.execute("COMMIT")
        finally:
            if pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                pg.rollback()


def index_paths_only() -> None:
    """For the rest of the current transaction, plan with index paths only (`INDEX_PATHS_ONLY`).
    No round trip of its own when pipelined."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.wrap_database_errors:
            connection.connection.execute(INDEX_PATHS_ONLY)


@contextmanager
def pipelined() -> Iterator[None]:
    """PostgreSQL pipeline mode: statements whose results nobody reads yet travel together, so
    a transaction costs one round trip per result it waits for (BEGIN and COMMIT included).
    Inside it, read results with fetch*; a bare rowcount is not known until the next sync."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield


def _flat(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> list:
    return [_adapt(value, kind) for row in rows for value, (_, kind) in zip(row, columns, strict=True)]


def db_uuid(value: Any) -> Any:
    """A UUID as the backend stores it (SQLite keeps 32 hex characters)."""
    value = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return value if connection.vendor == "postgresql" else value.hex


def from_db_datetime(value) -> datetime | None:
    """Raw-cursor timestamps come back naive (UTC) or as text on SQLite."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_db_json(value):
    """Raw-cursor JSON comes back as text on some backends."""
    return json.loads(value) if isinstance(value, str) else value


def _adapt(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, separators=(",", ":"))
    if kind == "uuid":
        return str(db_uuid(value)) if connection.vendor == "postgresql" else db_uuid(value)
    if kind == "timestamp":
        return connection.ops.adapt_datetimefield_value(value)
    return value
