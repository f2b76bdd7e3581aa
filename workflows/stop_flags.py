"""Each execution's Redis stop flag, kept in step with its status through PostgreSQL.

Workers drop the tasks of an execution that carries a stop flag and stop its running handlers.
A writer that ends an execution (cancel, timeout, a discarded dead letter) or runs it again
(re-run, dead-letter retry) marks it `stop_flag_stale` in its own transaction, and after commit
`sync_after_commit` makes Redis match the status. When Redis refuses (full, away) the mark stays
and the reaper's `sync` sends it again until Redis takes it, so a cancelled execution's queued
tasks never run for want of a flag. Each sync locks the rows first: a late flag can never land
after a re-run lifted it.
"""

import uuid

import structlog
from django.db import transaction

from workflows.models import Execution
from workflows.outages import describe
from workflows.streams import get_streams

log = structlog.get_logger(__name__)
SYNC_BATCH = 500


def sync_after_commit(execution_id: uuid.UUID) -> None:
    """After the caller's commit, send the flag change of an execution it marked stale. A
    refusal is logged; the mark stays for the reaper."""

    def sync_now() -> None:
        try:
            sync([execution_id])
        except Exception as exc:  # Redis or PostgreSQL refusing: the reaper sends it later
            log.warning("stop_flag_deferred", execution_id=str(execution_id), error=describe(exc))

    transaction.on_commit(sync_now)


def sync(execution_ids: list[uuid.UUID] | None = None) -> int:
    """Make Redis match the status of stale executions (these, or the first SYNC_BATCH of all),
    then clear their marks; returns how many. The reaper's pass skips rows another writer holds:
    that writer syncs them itself, or a later pass does."""
    with transaction.atomic():
        stale = Execution.objects.select_for_update(skip_locked=execution_ids is None).filter(
            stop_flag_stale=True
        )
        if execution_ids is not None:
            stale = stale.filter(id__in=execution_ids)
        rows = list(stale.order_by("id").values_list("id", "status")[:SYNC_BATCH])
        if not rows:
            return 0
        get_streams().sync_stop_flags(
            ended=[str(pk) for pk, status in rows if status in Execution.TERMINAL],
            live=[str(pk) for pk, status in rows if status not in Execution.TERMINAL],
        )
        Execution.objects.filter(id__in=[pk for pk, _ in rows]).update(stop_flag_stale=False)
    return len(rows)
