"""The one module that talks to Redis: stream names, consumer groups, publish, read, ack.

Acked entries are deleted in the same MULTI as their ack, so streams stay small without ever
trimming an entry that is still pending.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from django.conf import settings

from workflows.messages import (
    CompletionMessage,
    MessageError,
    TaskMessage,
    decode_completion,
    decode_task,
    encode,
)

WORKERS_GROUP = "workers"
ORCHESTRATORS_GROUP = "orchestrators"
CANCEL_FLAG_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Entry:
    """A stream entry read through a consumer group: its id and decoded message (or the error)."""

    id: bytes
    message: TaskMessage | CompletionMessage | None
    error: MessageError | None = None


class Streams:
    """Stream and key names for one prefix, plus the operations the runners and API need."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self.tasks = f"{prefix}:tasks"
        self.completions = f"{prefix}:completions"
        self.dlq = f"{prefix}:dlq"

    def cancel_key(self, execution_id: str) -> str:
        return f"{self.prefix}:cancelled:{execution_id}"

    def ensure_groups(self) -> None:
        """Create both consumer groups (and their streams); safe to call from every process."""
        for stream, group in ((self.tasks, WORKERS_GROUP), (self.completions, ORCHESTRATORS_GROUP)):
            try:
                self.client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def publish_tasks(self, tasks: Sequence[TaskMessage], *, ack_completions: Sequence[bytes] = ()) -> None:
        """XADD the tasks, then ack+delete the completions that produced them, in one round trip."""
        if not tasks and not ack_completions:
            return
        pipe = self.client.pipeline(transaction=True)
        for task in tasks:
            pipe.xadd(self.tasks, encode(task))
        if ack_completions:
            pipe.xack(self.completions, ORCHESTRATORS_GROUP, *ack_completions)
            pipe.xdel(self.completions, *ack_completions)
        pipe.execute()

    def publish_completions(self, done: Sequence[tuple[bytes, CompletionMessage]]) -> None:
        """XADD each completion and ack+delete its task entry, atomically, in one round trip."""
        if not done:
            return
        pipe = self.client.pipeline(transaction=True)
        for _, completion in done:
            pipe.xadd(self.completions, encode(completion))
        task_ids = [entry_id for entry_id, _ in done]
        pipe.xack(self.tasks, WORKERS_GROUP, *task_ids)
        pipe.xdel(self.tasks, *task_ids)
        pipe.execute()

    def ack_tasks(self, entry_ids: Sequence[bytes]) -> None:
        """Ack+delete task entries that need no completion (cancelled, undecodable)."""
        if entry_ids:
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(self.tasks, WORKERS_GROUP, *entry_ids)
            pipe.xdel(self.tasks, *entry_ids)
            pipe.execute()

    def read_tasks(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        return self._read(self.tasks, WORKERS_GROUP, consumer, count, block_ms, decode_task)

    def read_completions(
        self, consumer: str, count: int, block_ms: int, *, own_pending: bool = False
    ) -> list[Entry]:
        """New completions; with own_pending, those this consumer read but never acked."""
        return self._read(
            self.completions,
            ORCHESTRATORS_GROUP,
            consumer,
            count,
            block_ms,
            decode_completion,
            start="0" if own_pending else ">",
        )

    def _read(self, stream, group, consumer, count, block_ms, decode, start=">") -> list[Entry]:
        try:
            response = self.client.xreadgroup(
                group, consumer, {stream: start}, count=count, block=None if start == "0" else block_ms
            )
        except redis.ResponseError as exc:
            # The stream or group vanished (Redis restarted empty, FLUSHALL): recreate and go on.
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_groups()
            return []
        entries = []
        for _, messages in response or ():
            for entry_id, fields in messages:
                try:
                    entries.append(Entry(entry_id, decode(fields)))
                except MessageError as exc:
                    entries.append(Entry(entry_id, None, exc))
        return entries

    def set_cancelled(self, execution_id: str) -> None:
        self.client.set(self.cancel_key(execution_id), 1, ex=CANCEL_FLAG_TTL_SECONDS)

    def cancelled_among(self, execution_ids: Iterable[str]) -> set[str]:
        """Which of these executions carry a cancel flag; one round trip."""
        ids = list(dict.fromkeys(execution_ids))
        if not ids:
            return set()
        flags = self.client.mget([self.cancel_key(i) for i in ids])
        return {i for i, flag in zip(ids, flags, strict=True) if flag is not None}

    def lag(self) -> dict:
        """Entries waiting (not yet delivered or not yet acked) per stream; acked ones are deleted."""
        pipe = self.client.pipeline(transaction=False)
        for stream, group in ((self.tasks, WORKERS_GROUP), (self.completions, ORCHESTRATORS_GROUP)):
            pipe.xlen(stream)
            pipe.xpending(stream, group)
        try:
            xlen_tasks, pending_tasks, xlen_done, pending_done = pipe.execute()
        except redis.ResponseError:
            return {}
        return {
            "tasks": {"length": xlen_tasks, "pending": pending_tasks["pending"]},
            "completions": {"length": xlen_done, "pending": pending_done["pending"]},
        }

    def ping(self) -> bool:
        return bool(self.client.ping())


@functools.cache
def redis_client() -> redis.Redis:
    """One connection pool per process, from REDIS_URL."""
    options = {"health_check_interval": 30}
    if not settings.REDIS_URL.startswith("unix://"):
        options["socket_keepalive"] = True
    return redis.Redis.from_url(settings.REDIS_URL, **options)


def get_streams() -> Streams:
    return Streams(redis_client(), settings.STREAM_PREFIX)
