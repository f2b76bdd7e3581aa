"""Orchestrator: applies completion batches in one transaction each, then publishes and acks."""

import time

import structlog
from django.db import DatabaseError, connection, transaction

from workflows import engine, metrics
from workflows.streams import ORCHESTRATORS_GROUP, Streams

log = structlog.get_logger(__name__)


class Orchestrator:
    """One orchestrator process's engine; `step()` handles one batch of completions."""

    def __init__(self, streams: Streams, *, consumer: str, batch_size: int, block_ms: int):
        self.streams = streams
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
            with transaction.atomic():
                dispatch = engine.completions_apply(completions)
        except DatabaseError as exc:
            # Not acked: the batch stays pending and is retried after reconnecting.
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
        )
        return len(entries)
