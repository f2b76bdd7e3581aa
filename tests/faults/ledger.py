"""The effects ledger: one row each time a test handler starts, does its effect, or is stopped.

It lives in the pytest-django test database, which no fault test stops or restarts, in a table
Django does not know about (so the flush after each test leaves it alone; rows are told apart by
execution id). The runners write to it with a plain psycopg connection; the test reads it back
and so checks that a side effect happened once, however often the task was delivered.

An effect made with an idempotency key is done once per key, as by a service that honours an
`Idempotency-Key` header: a repeat is answered without doing it again, and recorded as REPLAYED.
"""

import os
from collections import Counter

import psycopg

TABLE = "fault_effects"
URL_VARIABLE = "FAULT_EFFECTS_DATABASE_URL"
START, EFFECT, REPLAYED, STOPPED = "start", "effect", "replayed", "stopped"


def record(
    *, execution_id: str, node_id: str, attempt: int, kind: str, idempotency_key: str | None = None
) -> None:
    """Append one row, committed at once (a kill -9 right after must not lose it). An EFFECT with
    an `idempotency_key` already used is not done again: it is recorded as REPLAYED (a unique
    index decides, so two concurrent calls with one key still make one effect)."""
    insert = f"INSERT INTO {TABLE} (execution_id, node_id, attempt, kind, pid, idempotency_key)"
    with psycopg.connect(os.environ[URL_VARIABLE], autocommit=True) as connection:
        done = connection.execute(
            f"{insert} VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
            (execution_id, node_id, attempt, kind, os.getpid(), idempotency_key),
        ).fetchone()
        if done is None:
            connection.execute(
                f"{insert} VALUES (%s, %s, %s, %s, %s, NULL)",
                (execution_id, node_id, attempt, REPLAYED, os.getpid()),
            )


class Ledger:
    """The test's side: create the table, count and list rows."""

    def __init__(self, url: str):
        self.url = url

    def create_table(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " id bigserial PRIMARY KEY, execution_id text NOT NULL, node_id text NOT NULL,"
                " attempt integer NOT NULL, kind text NOT NULL, pid integer NOT NULL, idempotency_key text,"
                " recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            connection.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_once ON {TABLE} (idempotency_key)"
                " WHERE idempotency_key IS NOT NULL"
            )

    def rows(self, execution_id: str, node_id: str | None = None, kind: str | None = None) -> list[dict]:
        """Rows of one execution (optionally one node, one kind), oldest first."""
        query = f"SELECT node_id, attempt, kind, pid, recorded_at FROM {TABLE} WHERE execution_id = %s"
        args: list = [str(execution_id)]
        if node_id is not None:
            query += " AND node_id = %s"
            args.append(node_id)
        if kind is not None:
            query += " AND kind = %s"
            args.append(kind)
        with psycopg.connect(self.url, autocommit=True) as connection:
            cursor = connection.execute(query + " ORDER BY id", args)
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def counts(self, execution_id: str, kind: str = EFFECT) -> Counter:
        """How many rows of `kind` each node of the execution has."""
        return Counter(row["node_id"] for row in self.rows(execution_id, kind=kind))

    def assert_once(self, execution_id: str, nodes, kind: str = EFFECT) -> None:
        """Each of `nodes` has exactly one row of `kind`; on failure the message lists the rows of
        the nodes that are off (their pids tell which worker ran them)."""
        counts = self.counts(execution_id, kind)
        off = [node for node in nodes if counts[node] != 1]
        if off:
            rows = [r for r in self.rows(execution_id) if r["node_id"] in off]
            raise AssertionError(f"{kind} not exactly once for {off}; their ledger rows: {rows}")
