"""Raw SQL for the hot paths, portable between PostgreSQL and SQLite: set-based
UPDATE ... FROM (VALUES ...) RETURNING, and reading raw values back.

The orchestrator changes many rows per batch, each with its own values; one statement per batch
instead of one per row is what keeps the hot path O(round trips per batch), not per task.
"""

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

# Column kinds and how each is cast inside VALUES, so PostgreSQL types the CTE columns.
POSTGRES_CASTS = {
    "int": "CAST(%s AS bigint)",
    "text": "CAST(%s AS text)",
    "json": "CAST(%s AS jsonb)",
    "uuid": "CAST(%s AS uuid)",
    "timestamp": "CAST(%s AS timestamptz)",
}
CHUNK_ROWS = 1000


def update_from_values(
    table: str,
    *,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    assignments: str,
    where: str,
    returning: str = "",
) -> list[tuple]:
    """`WITH v(cols) AS (VALUES rows) UPDATE table SET assignments FROM v WHERE where RETURNING`.

    `columns` are (name, kind) pairs; refer to them as `v.name` and to the table's own columns
    unqualified in `assignments` and as `{table}.col` in `where`.
    """
    if not rows:
        return []
    names = ", ".join(name for name, _ in columns)
    postgres = connection.vendor == "postgresql"
    row_sql = "(" + ", ".join(POSTGRES_CASTS[kind] if postgres else "%s" for _, kind in columns) + ")"
    results: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            params = [
                _adapt(value, kind) for row in chunk for value, (_, kind) in zip(row, columns, strict=True)
            ]
            # Only identifiers and expressions written in this codebase are interpolated;
            # every value goes through a placeholder.
            sql = (
                f"WITH v ({names}) AS (VALUES {', '.join([row_sql] * len(chunk))}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} FROM v WHERE {where}"
            )
            if returning:
                sql += f" RETURNING {returning}"
            cursor.execute(sql, params)
            if returning:
                results.extend(cursor.fetchall())
    return results


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
