"""Reaper / scheduler: the periodic, idempotent passes that recover from every kind of loss.

Each pass is a method that returns how much it did, so tests call them one by one. Two reapers
may run at once: every pass is atomic in Redis (Lua, XAUTOCLAIM) or guarded by row locks.
"""

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

import redis
import structlog

from resilience.clock import SYSTEM, Clock
from resilience.errors import simple_error
from workflows import dispatch, runs, services, stop_flags, subworkflows
from workflows.messages import CompletionMessage, MessageError, decode_task
from workflows.models import Execution, TaskRun
from workflows.runner import RETRY_MAX_SECONDS
from workflows.streams import ORCHESTRATORS_GROUP, WORKERS_GROUP, Entry, Streams

log = structlog.get_logger(__name__)
REPUBLISH_BATCH = 1000


@dataclass(frozen=True)
class ReaperConfig:
    visibility_timeout_seconds: float = 30.0
    republish_after_seconds: float = 60.0
    max_deliveries: int = 3


class Reaper:
    """One reaper process; `sweep()` runs every pass once."""

    def __init__(self, streams: Streams, *, consumer: str, config: ReaperConfig, clock: Clock = SYSTEM):
        self.streams = streams
        self.consumer = consumer
        self.config = config
        self.clock = clock
        self.redispatch_all_at: float | None = None
        # Set when a sweep meets a Redis that refuses work; see `sweep`.
        self.redis_failed = False
        self.reclaim_from = 0.0

    def sweep(self) -> dict[str, int]:
        try:
            return self._sweep()
        except redis.RedisError:
            self.redis_failed = True
            raise

    def _sweep(self) -> dict[str, int]:
        # First, and needing only PostgreSQL: a Redis that refuses writes (full) or answers
        # nothing fails the passes below, and deadlines must hold through that.
        timed_out = self.time_out_executions()
        if not self.streams.survived():
            # Also true on the very first sweep against a fresh Redis: only queued work makes it
            # worth a warning.
            queued = TaskRun.objects.filter(
                status=TaskRun.Status.QUEUED, execution__status=Execution.Status.RUNNING
            ).exists()
            (log.warning if queued else log.info)(
                "redis_epoch_missing", action="re-dispatching queued tasks after one visibility timeout"
            )
            self.streams.ensure_groups()
            # Running workers re-create their claims on their next heartbeat; wait for that so
            # work in flight is not dispatched a second time.
            self.redispatch_all_at = self.clock.monotonic() + self.config.visibility_timeout_seconds
        if self.redis_failed:
            # Redis answers again. While it did not, workers could neither heartbeat their tasks
            # nor publish what finished, so idle times say nothing about who is alive: reclaim
            # nothing until they have had a visibility timeout, and their longest retry wait, to
            # catch up.
            self.redis_failed = False
            self.reclaim_from = (
                self.clock.monotonic() + self.config.visibility_timeout_seconds + RETRY_MAX_SECONDS
            )
        reclaiming = self.clock.monotonic() >= self.reclaim_from
        everything = self.redispatch_all_at is not None and self.clock.monotonic() >= self.redispatch_all_at
        if everything:
            self.redispatch_all_at = None
        return {
            # First of the Redis passes: a re-run's lifted flag goes before its tasks go out again.
            "stop_flags_synced": self.sync_stop_flags(),
            "delayed_moved": self.move_due_delayed(),
            "tasks_reclaimed": self.reclaim_tasks() if reclaiming else 0,
            "completions_reclaimed": self.reclaim_completions() if reclaiming else 0,
            "republished": self.republish_lost(everything=everything),
            "subworkflows_reported": self.report_ended_subworkflows(),
            "timed_out": timed_out,
        }

    def move_due_delayed(self) -> int:
        """Retries, rate-limited and circuit-held tasks whose time has come go to the task stream."""
        return self.streams.move_due_delayed()

    def reclaim_tasks(self) -> int:
        """Tasks idle past the visibility timeout (worker dead or stuck) are re-delivered; one
        delivered too many times (it kills its worker) becomes a `poison` dead letter."""
        claimed, deleted = self.streams.reclaim(
            self.streams.tasks, WORKERS_GROUP, self.consumer, min_idle_ms=self._idle_ms()
        )
        # Trimmed while pending: the content is gone; republish_lost re-dispatches from PostgreSQL.
        self.streams.drop(self.streams.tasks, WORKERS_GROUP, deleted)
        for entry_id, fields in claimed:
            try:
                task = decode_task(fields)
            except (MessageError, UnicodeDecodeError) as exc:
                log.error("reclaimed_task_undecodable", entry_id=entry_id.decode(), error=str(exc))
                self.streams.park_undecodable(
                    self.streams.tasks, WORKERS_GROUP, [Entry(entry_id, None, exc, fields)]
                )
                continue
            if task.deliveries + 1 >= self.config.max_deliveries:
                self.streams.replace_task_with_completion(
                    entry_id, task, _poison(task, self.consumer, self.config.max_deliveries)
                )
                log.error("task_poison", execution_id=task.execution_id, node_id=task.node_id)
                continue
            self.streams.redeliver_task(entry_id, dataclasses.replace(task, deliveries=task.deliveries + 1))
        return len(claimed) + len(deleted)

    def reclaim_completions(self) -> int:
        """Completions a dead orchestrator read but never acked go back to the stream."""
        claimed, deleted = self.streams.reclaim(
            self.streams.completions, ORCHESTRATORS_GROUP, self.consumer, min_idle_ms=self._idle_ms()
        )
        self.streams.drop(self.streams.completions, ORCHESTRATORS_GROUP, deleted)
        for entry_id, fields in claimed:
            self.streams.redeliver_completion(entry_id, fields)
        return len(claimed) + len(deleted)

    def republish_lost(self, *, everything: bool = False) -> int:
        """QUEUED tasks nobody holds (publish lost in a crash, or Redis lost its data) are
        published again; workers drop a copy whose delivery already ran."""
        queued = TaskRun.objects.filter(
            status=TaskRun.Status.QUEUED, execution__status=Execution.Status.RUNNING
        )
        if not everything:
            cutoff = self.clock.now() - timedelta(seconds=self.config.republish_after_seconds)
            queued = queued.filter(queued_at__lt=cutoff)
        rows = list(queued.order_by("queued_at").values_list("id", "execution_id")[:REPUBLISH_BATCH])
        if not rows:
            return 0
        snapshots = {}
        for _, execution_id in rows:
            if str(execution_id) not in snapshots:
                snapshots[str(execution_id)] = runs.run_snapshot(execution_id)
        messages = dispatch.messages_for_queued(
            TaskRun.objects.filter(id__in=[pk for pk, _ in rows]), snapshots
        )
        lost = [m for m, held in zip(messages, self.streams.accounted_for(messages), strict=True) if not held]
        self.streams.publish_tasks(lost)
        if lost:
            log.warning("tasks_republished", count=len(lost))
        return len(lost)

    def report_ended_subworkflows(self) -> int:
        """A sub-workflow node still waiting for a child that ended more than
        `republish_after_seconds` ago lost its completion (a crash between the child's end and
        the publish): it is published again; a duplicate is fenced off."""
        cutoff = self.clock.now() - timedelta(seconds=self.config.republish_after_seconds)
        completions = subworkflows.lost_completions(older_than=cutoff)
        self.streams.publish_engine_completions(completions)
        if completions:
            log.warning("subworkflow_completions_republished", count=len(completions))
        return len(completions)

    def sync_stop_flags(self) -> int:
        """Stop flags Redis refused when an execution ended or ran again (full, unreachable) are
        sent now, so workers drop a stopped execution's tasks and run a resumed one's. Failures
        the orchestrator recorded come here too, their flag sent a second time (see
        stop_flags.py): counted in the sweep's result, not logged as a problem. The refusals
        themselves were logged when they happened (`stop_flag_deferred`)."""
        return stop_flags.sync()

    def time_out_executions(self) -> int:
        """RUNNING executions past their deadline end TIMED_OUT; what is left is cancelled. The
        stop flag that tells workers goes out after the commit; if Redis refuses it, the
        execution stays marked and `sync_stop_flags` sends it when Redis takes writes again."""
        due = Execution.objects.filter(
            status=Execution.Status.RUNNING, deadline__lt=self.clock.now()
        ).values_list("id", flat=True)[:REPUBLISH_BATCH]
        return sum(services.execution_time_out(execution_id=execution_id) for execution_id in due)

    def _idle_ms(self) -> int:
        return int(self.config.visibility_timeout_seconds * 1000)


def _poison(task, consumer: str, deliveries: int) -> CompletionMessage:
    error = simple_error(
        "poison",
        "poison_message",
        f"task was delivered {deliveries} times and never completed (it may crash its worker)",
        permanent=True,
    )
    return CompletionMessage.for_task(task, ok=False, error=error, exhausted=True, worker=consumer)
