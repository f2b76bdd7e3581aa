"""Orchestrator: applies completion batches in one transaction each, then publishes and acks."""

import dataclasses
import json
import time
import uuid

import structlog
from django.db import InterfaceError, OperationalError, connection, transaction
from psycopg.errors import LockNotAvailable

from resilience.clock import SYSTEM, Clock
from resilience.errors import simple_error, storable
from workflows import engine, metrics
from workflows.bulk_sql import pipelined
from workflows.dispatch import Dispatch
from workflows.messages import CompletionMessage
from workflows.outages import describe
from workflows.streams import ORCHESTRATORS_GROUP, Entry, Streams

log = structlog.get_logger(__name__)


class Orchestrator:
    """One orchestrator process's engine; `step()` handles one batch of completions."""

    def __init__(
        self, streams: Streams, *, consumer: str, batch_size: int, block_ms: int, clock: Clock = SYSTEM
    ):
        self.streams = streams
        self.clock = clock
        self.consumer = consumer
        self.batch_size = batch_size
        self.block_ms = block_ms
        # After a failure (or at start) first re-read what this consumer took but never acked.
        self.recover_own_pending = True
        # A committed batch's dispatch and acks that Redis refused (full, unreachable).
        self.unpublished: tuple[Dispatch, list[bytes]] | None = None

    def step(self) -> int:
        """Read one batch and apply it; returns the number of completions handled."""
        if self.unpublished is not None:
            # Nothing new before it goes out: a failure here waits out the runner's backoff.
            self._publish(*self.unpublished)
        entries = self.streams.read_completions(
            self.consumer, self.batch_size, self.block_ms, own_pending=self.recover_own_pending
        )
        if self.recover_own_pending and len(entries) < self.batch_size:
            self.recover_own_pending = False
        if not entries:
            return 0
        metrics.BATCH_SIZE.observe(len(entries))
        entries = [entry if entry.message is not None else _undecodable(entry) for entry in entries]
        undecodable = [e for e in entries if e.message is None]
        self.streams.park_undecodable(self.streams.completions, ORCHESTRATORS_GROUP, undecodable)
        entries = [e for e in entries if e.message is not None]
        if not entries:
            return len(undecodable)
        completions = [e.message for e in entries]
        try:
            try:
                dispatch = batch_apply(completions, self.clock)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:  # a value or invariant the database refuses: isolate it
                log.error(
                    "completion_batch_rejected", error=f"{exc.__class__.__name__}: {exc}", size=len(entries)
                )
                dispatch = _apply_one_by_one(completions, self.clock)
        except (OperationalError, InterfaceError) as exc:
            if isinstance(exc.__cause__, LockNotAvailable):
                return self._apply_around_locks(entries)
            # Database unreachable. Not acked: the batch stays pending and is retried after
            # reconnecting.
            log.warning("completion_batch_failed", error=str(exc), size=len(entries))
            self.recover_own_pending = True
            connection.close()
            time.sleep(0.5)
            return 0
        self._publish(dispatch, [e.id for e in entries])
        return len(entries)

    def _apply_around_locks(self, entries: list[Entry]) -> int:
        """Some execution of the batch stayed locked past DB_LOCK_TIMEOUT_MS (a stuck session):
        apply the batch one execution at a time and leave the locked ones' completions pending,
        unacked. The reaper hands them back after a visibility timeout, so they are tried again
        while every other execution keeps flowing."""
        by_execution: dict[str, list[Entry]] = {}
        for entry in entries:
            by_execution.setdefault(entry.message.execution_id, []).append(entry)
        merged, acks = Dispatch(), []
        for execution_id, group in by_execution.items():
            completions = [e.message for e in group]
            try:
                try:
                    dispatch = batch_apply(completions, self.clock)
                except (OperationalError, InterfaceError):
                    raise
                except Exception:  # as in step: isolate the completion the database refuses
                    dispatch = _apply_one_by_one(completions, self.clock)
            except OperationalError as exc:
                if not isinstance(exc.__cause__, LockNotAvailable):
                    raise
                log.warning("execution_locked", execution_id=execution_id, completions=len(group))
                continue
            merged.extend(dispatch)
            acks += [e.id for e in group]
        self._publish(merged, acks)
        return len(acks)

    def _publish(self, dispatch: Dispatch, acks: list[bytes]) -> None:
        """Committed: publish what became ready, then ack. Held until Redis takes it, so the
        retries, dead-letter events, stop flags and wake-ups it carries are not lost with it; a
        crash meanwhile is healed by the reaper (QUEUED tasks re-published, duplicate
        completions fenced off)."""
        self.unpublished = (dispatch, acks)
        self.streams.publish_tasks(
            dispatch.tasks,
            ack_completions=acks,
            delayed=dispatch.delayed,
            dead_letters=dispatch.dead_letters,
            finished=dispatch.finished,
            stopped=dispatch.stopped,
        )
        self.unpublished = None


def _undecodable(entry: Entry) -> Entry:
    """A completion no reader understands (bad JSON, missing fields, unknown version). If it
    still names a task, that task fails permanently (a dead letter an operator can retry): its
    outcome is lost and no one else would report it, as its delivery is marked done. Otherwise it
    is parked on the DLQ stream."""
    failure = _failure_of_named_task(entry)
    log.error(
        "completion_undecodable",
        entry_id=entry.id.decode(),
        error=describe(entry.error),
        task_id=failure.task_id if failure else None,
    )
    return entry if failure is None else Entry(entry.id, failure)


def _failure_of_named_task(entry: Entry) -> CompletionMessage | None:
    try:
        body = json.loads(entry.fields[b"body"])
        task_id, attempt, node_id = body["task_id"], body["attempt"], body["node_id"]
        execution_id = str(uuid.UUID(body["execution_id"]))
    except (KeyError, TypeError, ValueError, AttributeError):  # no body, not JSON, not a dict, no id
        return None
    if not (type(task_id) is int and type(attempt) is int and isinstance(node_id, str)):
        return None
    error = simple_error(
        "poison",
        "undecodable_completion",
        storable(f"undecodable completion: {describe(entry.error)}"),
        permanent=True,
    )
    return CompletionMessage(
        task_id=task_id,
        execution_id=execution_id,
        node_id=node_id,
        attempt=attempt,
        ok=False,
        error=error,
        exhausted=True,
    )


def batch_apply(completions: list[CompletionMessage], clock: Clock = SYSTEM) -> Dispatch:
    """One batch as the orchestrator applies it: in one statement when it can, otherwise through
    the general path in one transaction. Returns what to publish."""
    dispatch = engine.completions_commit_at_once(completions)
    if dispatch is None:
        # Atomic outside the pipeline: toggling autocommit inside one would cost two syncs.
        with transaction.atomic(), pipelined():
            dispatch = engine.completions_apply(completions, clock=clock)
    metrics.count_applied(dispatch.outcomes, dispatch.fenced)
    return dispatch


def _apply_one_by_one(completions: list[CompletionMessage], clock: Clock) -> Dispatch:
    """One bad completion must not block its batch forever: apply each alone, and record one the
    database refuses as a permanent failure of its task (so it reaches the dead-letter queue)."""
    merged = Dispatch()
    for completion in completions:
        try:
            dispatch = batch_apply([completion], clock)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.error(
                "completion_rejected", task_id=completion.task_id, error=f"{exc.__class__.__name__}: {exc}"
            )
            failure = simple_error(
                "validation",
                "unstorable_completion",
                storable(f"{exc.__class__.__name__}: {exc}"),
                permanent=True,
            )
            try:
                dispatch = batch_apply(
                    [dataclasses.replace(completion, ok=False, output=None, error=failure, exhausted=True)],
                    clock,
                )
            except (OperationalError, InterfaceError):
                raise
            except Exception as again:
                # Left QUEUED in the database: the reaper re-dispatches it later.
                log.error("completion_dropped", task_id=completion.task_id, error=str(again))
                continue
        merged.extend(dispatch)
    return merged
