"""Orchestrator: applies completion batches in one transaction each, then publishes and acks."""

import dataclasses
import time

import structlog
from django.db import InterfaceError, OperationalError, connection, transaction

from resilience.clock import SYSTEM, Clock
from resilience.errors import simple_error, storable
from workflows import engine, metrics
from workflows.bulk_sql import pipelined
from workflows.dispatch import Dispatch
from workflows.messages import CompletionMessage
from workflows.streams import ORCHESTRATORS_GROUP, Streams

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

    def step(self) -> int:
        """Read one batch and apply it; returns the number of completions handled."""
        entries = self.streams.read_completions(
            self.consumer, self.batch_size, self.block_ms, own_pending=self.recover_own_pending
        )
        if self.recover_own_pending and len(entries) < self.batch_size:
            self.recover_own_pending = False
        if not entries:
            return 0
        metrics.BATCH_SIZE.observe(len(entries))
        undecodable = [e for e in entries if e.message is None]
        for bad in undecodable:
            log.error("completion_undecodable", entry_id=bad.id.decode(), error=str(bad.error))
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
            # Database unreachable. Not acked: the batch stays pending and is retried after
            # reconnecting.
            log.warning("completion_batch_failed", error=str(exc), size=len(entries))
            self.recover_own_pending = True
            connection.close()
            time.sleep(0.5)
            return 0
        # Committed: publish what became ready, then ack; a crash in between is healed by the
        # reaper (QUEUED tasks re-published, duplicate completions are fenced off).
        self.streams.publish_tasks(
            dispatch.tasks,
            ack_completions=[e.id for e in entries],
            delayed=dispatch.delayed,
            dead_letters=dispatch.dead_letters,
            finished=dispatch.finished,
            stopped=dispatch.stopped,
        )
        return len(entries)


def batch_apply(completions: list[CompletionMessage], clock: Clock = SYSTEM) -> Dispatch:
    """One batch as the orchestrator applies it: in one statement when it can, otherwise through
    the general path in one transaction. Returns what to publish."""
    dispatch = engine.completions_commit_at_once(completions)
    if dispatch is not None:
        return dispatch
    # Atomic outside the pipeline: toggling autocommit inside one would cost two syncs.
    with transaction.atomic(), pipelined():
        return engine.completions_apply(completions, clock=clock)


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
