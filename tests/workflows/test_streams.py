"""The Redis module against a real Redis: groups, publish/read/ack, admission guards (cancel, done,
claim, circuit breaker, rate limit), the delayed set, heartbeats and reclaim, and operator views.

Every test runs on its own stream prefix (the `streams` fixture), so tests never share keys.
"""

import json
import time
import uuid

import pytest
import redis

from resilience.errors import simple_error
from workflows.messages import CompletionMessage, TaskMessage, decode_task, encode
from workflows.streams import ORCHESTRATORS_GROUP, PUBLISH_CHUNK, WORKERS_GROUP, Streams, redis_client

pytestmark = pytest.mark.embedded

CLAIM_MS = 30_000
EXECUTION_ID = str(uuid.UUID(int=1))


def task(
    task_id: int = 1,
    *,
    attempt: int = 1,
    handler: str = "echo",
    execution_id: str = EXECUTION_ID,
    rate_limit: str | None = None,
) -> TaskMessage:
    return TaskMessage(
        task_id=task_id,
        execution_id=execution_id,
        node_id=f"node_{task_id}",
        handler=handler,
        attempt=attempt,
        config={"n": task_id},
        params={"p": "v"},
        rate_limit=rate_limit,
    )


def completion(message: TaskMessage, *, ok: bool = True, category: str = "handler") -> CompletionMessage:
    return CompletionMessage(
        task_id=message.task_id,
        execution_id=message.execution_id,
        node_id=message.node_id,
        attempt=message.attempt,
        ok=ok,
        output={"done": True} if ok else None,
        error=None if ok else simple_error(category, "boom", "it broke"),
        worker="worker-1",
    )


def read_all(streams: Streams, consumer: str = "worker-1", count: int = 100) -> list:
    return streams.read_tasks(consumer, count, 10)


def run_to_completion(
    streams: Streams, message: TaskMessage, *, ok: bool, threshold: int = 5, reset: float = 30.0, **kwargs
) -> None:
    """Publish, read and complete one task as a worker would, recording the outcome in its circuit."""
    streams.publish_tasks([message])
    [entry] = read_all(streams)
    streams.publish_completions(
        [(entry.id, completion(message, ok=ok, **kwargs), message.handler)], circuit=(threshold, reset)
    )


def verdicts(streams: Streams, messages: list[TaskMessage], consumer: str = "worker-1", **kwargs):
    kwargs.setdefault("claim_ms", CLAIM_MS)
    kwargs.setdefault("probe_seconds", 5.0)
    return [(a.verdict, a.wait_seconds) for a in streams.admit(messages, consumer, **kwargs)]


def idle_ms(streams: Streams, entry_id: bytes) -> int:
    [pending] = streams.client.xpending_range(streams.tasks, WORKERS_GROUP, entry_id, entry_id, 1)
    return pending["time_since_delivered"]


# --- groups ----------------------------------------------------------------------------------


def test_ensure_groups_is_idempotent(streams):
    streams.ensure_groups()
    streams.ensure_groups()

    tasks_groups = streams.client.xinfo_groups(streams.tasks)
    completion_groups = streams.client.xinfo_groups(streams.completions)
    assert [g["name"] for g in tasks_groups] == [WORKERS_GROUP.encode()]
    assert [g["name"] for g in completion_groups] == [ORCHESTRATORS_GROUP.encode()]


def test_ensure_groups_raises_errors_other_than_busygroup(stream_prefix):
    streams = Streams(redis_client(), stream_prefix)
    streams.client.set(streams.tasks, "not a stream")

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        streams.ensure_groups()


def test_read_recreates_a_vanished_group(streams):
    streams.client.delete(streams.tasks)

    assert read_all(streams) == []
    streams.publish_tasks([task()])
    assert [e.message for e in read_all(streams)] == [task()]


# --- publish, read, ack ----------------------------------------------------------------------


def test_publish_and_read_round_trip(streams):
    sent = [task(1), task(2, handler="other", rate_limit="5/s")]

    streams.publish_tasks(sent)
    entries = read_all(streams)

    assert [e.message for e in entries] == sent
    assert all(e.error is None for e in entries)
    assert read_all(streams, "worker-2") == []  # delivered once per group


def test_read_count_limits_the_batch(streams):
    streams.publish_tasks([task(i) for i in range(1, 6)])

    assert len(streams.read_tasks("worker-1", 2, 10)) == 2
    assert len(streams.read_tasks("worker-2", 10, 10)) == 3


def test_undecodable_entry_is_returned_with_its_error(streams):
    streams.client.xadd(streams.tasks, {"v": "9.0", "body": "{}"})

    [entry] = read_all(streams)

    assert entry.message is None
    assert "unsupported message schema version" in str(entry.error)


def test_ack_deletes_entries_while_unacked_ones_stay_pending(streams):
    streams.publish_tasks([task(1), task(2), task(3)])
    first, second, third = read_all(streams)

    streams.drop(streams.tasks, WORKERS_GROUP, [first.id, third.id])

    assert streams.client.xlen(streams.tasks) == 1
    pending = streams.client.xpending_range(streams.tasks, WORKERS_GROUP, "-", "+", 10)
    assert [p["message_id"] for p in pending] == [second.id]

    streams.drop(streams.tasks, WORKERS_GROUP, [second.id])
    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0


def test_publish_completions_acks_the_task_and_releases_its_claim(streams):
    message = task()
    streams.publish_tasks([message])
    [entry] = read_all(streams)
    verdicts(streams, [message])

    streams.publish_completions([(entry.id, completion(message), message.handler)], circuit=(5, 30.0))

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.exists(streams.claim_key(message.task_id, message.attempt)) == 0
    assert streams.client.exists(streams.done_key(message.task_id, message.attempt)) == 1
    [done] = streams.read_completions("orchestrator-1", 10, 10)
    assert done.message == completion(message)


def test_publish_completions_of_a_batch_records_each_in_its_own_handlers_circuit(streams):
    messages = [task(1), task(2, handler="flaky"), task(3, handler="strict")]
    streams.publish_tasks(messages)
    entries = read_all(streams)
    verdicts(streams, messages)
    outcomes = [
        completion(messages[0]),
        completion(messages[1], ok=False),
        completion(messages[2], ok=False, category="validation"),
    ]

    streams.publish_completions(
        [(e.id, c, m.handler) for e, c, m in zip(entries, outcomes, messages, strict=True)], circuit=(1, 30.0)
    )

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    assert [e.message for e in streams.read_completions("orchestrator-1", 10, 10)] == outcomes
    for message in messages:
        assert streams.client.exists(streams.claim_key(message.task_id, 1)) == 0
        assert streams.client.exists(streams.done_key(message.task_id, 1)) == 1
    circuits = streams.circuits()
    assert circuits["echo"]["state"] == "closed"
    assert circuits["flaky"]["state"] == "open"
    assert "strict" not in circuits


def test_admission_of_a_batch_gives_each_task_its_own_verdict(streams):
    streams.client.set(streams.cancel_key(str(uuid.UUID(int=2))), 1)
    streams.client.set(streams.done_key(3, 1), 1)
    batch = [task(1), task(2, execution_id=str(uuid.UUID(int=2))), task(3), task(4, rate_limit="1/h")]

    assert [v for v, _ in verdicts(streams, batch)] == ["run", "cancelled", "duplicate", "run"]
    [(verdict, wait)] = verdicts(streams, [task(5, rate_limit="1/h")])
    assert verdict == "rate"
    assert 0 < wait <= 3600


def test_publish_tasks_acks_completions_that_released_nothing(streams):
    add_completion(streams, completion(task()))
    [done] = streams.read_completions("orchestrator-1", 10, 10)

    streams.publish_tasks([], ack_completions=[done.id])

    assert streams.client.xlen(streams.completions) == 0
    assert streams.client.xpending(streams.completions, ORCHESTRATORS_GROUP)["pending"] == 0
    assert streams.client.xlen(streams.tasks) == 0


def test_publish_tasks_schedules_delays_emits_dead_letters_and_acks_completions(streams):
    message = task()
    add_completion(streams, completion(message))
    [done] = streams.read_completions("orchestrator-1", 10, 10)

    streams.publish_tasks(
        [task(2)],
        ack_completions=[done.id],
        delayed=[(task(3), time.time() + 60)],
        dead_letters=[{"v": "1.0", "body": "{}"}],
    )

    assert [e.message for e in read_all(streams)] == [task(2)]
    assert streams.client.zscore(streams.delayed, "3:1") is not None
    assert streams.client.xlen(streams.dlq) == 1
    assert streams.client.xlen(streams.completions) == 0
    assert streams.client.xpending(streams.completions, ORCHESTRATORS_GROUP)["pending"] == 0


def test_a_fan_out_larger_than_a_chunk_is_published_whole_in_order_then_acked(streams):
    add_completion(streams, completion(task()))
    [done] = streams.read_completions("orchestrator-1", 10, 10)
    children = [task(n) for n in range(2, 2 * PUBLISH_CHUNK + 7)]

    streams.publish_tasks(children, ack_completions=[done.id])

    published = read_all(streams, count=len(children) + 10)
    assert [e.message for e in published] == children
    assert all(streams.client.get(streams.sent_key(child.task_id, 1)) for child in children)
    assert streams.client.xpending(streams.completions, ORCHESTRATORS_GROUP)["pending"] == 0


def test_read_own_pending_completions(streams):
    add_completion(streams, completion(task()))
    [first] = streams.read_completions("orchestrator-1", 10, 10)

    assert streams.read_completions("orchestrator-1", 10, 10) == []
    [again] = streams.read_completions("orchestrator-1", 10, 10, own_pending=True)
    assert again.id == first.id


# --- admission -------------------------------------------------------------------------------


def add_completion(streams, message: CompletionMessage) -> None:
    """A completion on the stream, as a worker would have published it."""
    streams.client.xadd(streams.completions, encode(message))


def test_admit_runs_and_claims(streams):
    message = task()

    assert verdicts(streams, [message], "worker-1", claim_ms=5_000) == [("run", 0.0)]

    claim = streams.claim_key(message.task_id, message.attempt)
    assert 0 < streams.client.pttl(claim) <= 5_000
    [(worker, started)] = streams.running_claims([(message.task_id, message.attempt)])
    assert worker == "worker-1"
    assert abs(started - time.time()) < 5


def test_admit_again_by_the_same_consumer_is_refused_while_claimed(streams):
    message = task()
    verdicts(streams, [message], "worker-1")

    assert verdicts(streams, [message], "worker-1") == [("busy", 0.0)]


def test_admit_refuses_a_task_claimed_by_another_consumer(streams):
    message = task()
    verdicts(streams, [message], "worker-1")

    assert verdicts(streams, [message], "worker-2") == [("busy", 0.0)]
    assert verdicts(streams, [task(attempt=2)], "worker-2") == [("run", 0.0)]


def test_two_copies_of_one_delivery_in_a_batch_run_once(streams):
    message = task()

    result = verdicts(streams, [message, message], "worker-1")

    assert [v for v, _ in result].count("run") == 1


def test_admit_refuses_a_cancelled_execution(streams):
    other = str(uuid.UUID(int=2))
    streams.sync_stop_flags(ended=[EXECUTION_ID])

    result = verdicts(streams, [task(1), task(2, execution_id=other)])

    assert result == [("cancelled", 0.0), ("run", 0.0)]
    assert streams.client.exists(streams.claim_key(1, 1)) == 0
    assert streams.cancelled_executions([EXECUTION_ID, other]) == {EXECUTION_ID}
    assert streams.cancelled_executions([]) == set()


def test_admit_refuses_a_delivery_that_already_completed(streams):
    message = task()
    run_to_completion(streams, message, ok=True)

    assert verdicts(streams, [message]) == [("duplicate", 0.0)]
    assert verdicts(streams, [task(attempt=2)]) == [("run", 0.0)]


def test_circuit_opens_after_threshold_consecutive_failures(streams):
    # The default reset (30 s): with 0.2 s, CI once half-opened the circuit before the checks.
    run_to_completion(streams, task(1), ok=False, threshold=2)
    assert streams.circuits()["echo"]["state"] == "closed"
    assert verdicts(streams, [task(10)]) == [("run", 0.0)]

    run_to_completion(streams, task(2), ok=False, threshold=2)

    circuit = streams.circuits()["echo"]
    assert (circuit["state"], circuit["failures"]) == ("open", "2")
    [(verdict, wait)] = verdicts(streams, [task(11)])
    assert verdict == "circuit"
    assert 0 < wait <= 30
    assert verdicts(streams, [task(12, handler="other")]) == [("run", 0.0)]


def test_success_resets_the_consecutive_failure_count(streams):
    run_to_completion(streams, task(1), ok=False, threshold=2)
    run_to_completion(streams, task(2), ok=True, threshold=2)
    run_to_completion(streams, task(3), ok=False, threshold=2)

    circuit = streams.circuits()["echo"]
    assert (circuit["state"], circuit["failures"]) == ("closed", "1")


def test_permanent_failures_do_not_count_against_the_circuit(streams):
    for task_id in (1, 2, 3):
        run_to_completion(streams, task(task_id), ok=False, threshold=2, category="validation")

    assert "echo" not in streams.circuits()
    assert verdicts(streams, [task(10)]) == [("run", 0.0)]


def test_after_the_reset_time_one_probe_runs_and_others_wait(streams):
    for task_id in (1, 2):
        run_to_completion(streams, task(task_id), ok=False, threshold=2)
    assert verdicts(streams, [task(10)])[0][0] == "circuit"

    streams.client.hset(streams.circuit_key("echo"), "until", time.time() - 1)  # the reset time passed

    assert verdicts(streams, [task(10)], "worker-1", probe_seconds=5.0) == [("run", 0.0)]
    assert streams.circuits()["echo"]["state"] == "half_open"
    [(verdict, wait)] = verdicts(streams, [task(11)], "worker-2")
    assert verdict == "circuit"
    assert 4 < wait <= 5.0


def test_a_successful_probe_closes_the_circuit(streams):
    for task_id in (1, 2):
        run_to_completion(streams, task(task_id), ok=False, threshold=2)
    streams.client.hset(streams.circuit_key("echo"), "until", time.time() - 1)
    probe = task(10)
    assert verdicts(streams, [probe]) == [("run", 0.0)]

    run_to_completion(streams, probe, ok=True, threshold=2)

    circuit = streams.circuits()["echo"]
    assert (circuit["state"], circuit["failures"], circuit["until"]) == ("closed", "0", "0")
    assert verdicts(streams, [task(11), task(12)], "worker-2") == [("run", 0.0), ("run", 0.0)]


def test_a_failed_probe_reopens_the_circuit(streams):
    for task_id in (1, 2):
        run_to_completion(streams, task(task_id), ok=False, threshold=2, reset=0.2)
    streams.client.hset(streams.circuit_key("echo"), "until", time.time() - 1)
    probe = task(10)
    assert verdicts(streams, [probe]) == [("run", 0.0)]

    before = time.time()
    run_to_completion(streams, probe, ok=False, threshold=2, reset=30.0)

    circuit = streams.circuits()["echo"]
    assert circuit["state"] == "open"
    assert float(circuit["until"]) >= before + 30.0
    [(verdict, wait)] = verdicts(streams, [task(11)], "worker-2")
    assert verdict == "circuit"
    assert 29 < wait <= 30.0


def test_a_probe_that_never_reports_lets_another_probe_through(streams):
    for task_id in (1, 2):
        run_to_completion(streams, task(task_id), ok=False, threshold=2)
    streams.client.hset(streams.circuit_key("echo"), "until", time.time() - 1)
    assert verdicts(streams, [task(10)], "worker-1", probe_seconds=0.1) == [("run", 0.0)]
    assert verdicts(streams, [task(11)], "worker-2")[0][0] == "circuit"

    streams.client.hset(streams.circuit_key("echo"), "until", time.time() - 1)

    assert verdicts(streams, [task(11)], "worker-2") == [("run", 0.0)]


def test_rate_limit_refuses_beyond_the_limit_with_the_wait_until_the_next_window(streams):
    limited = [task(i, handler="limited", rate_limit="2/s") for i in (1, 2, 3)]

    result = verdicts(streams, [*limited, task(4, handler="free")])

    assert [v for v, _ in result] == ["run", "run", "rate", "run"]
    wait = result[2][1]
    assert 0 < wait <= 1.0
    assert streams.client.exists(streams.claim_key(3, 1)) == 0


def test_rate_limit_window_counter_expires(streams):
    now = time.time()
    verdicts(streams, [task(1, handler="limited", rate_limit="2/s")])

    [key] = streams.client.keys(f"{streams.prefix}:rate:limited:*")
    assert key.decode() in {streams.rate_key("limited", int(now)), streams.rate_key("limited", int(now) + 1)}
    assert 0 < streams.client.pttl(key) <= 2_000


# --- the delayed set -------------------------------------------------------------------------


def test_deferred_task_waits_in_the_delayed_set_until_due(streams):
    message = task()
    streams.publish_tasks([message])
    [entry] = read_all(streams)

    streams.defer_tasks([(entry.id, message, time.time() + 60)])

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    assert streams.move_due_delayed() == 0
    assert streams.lag()["delayed"] == 1
    assert streams.client.xlen(streams.tasks) == 0


def test_due_task_moves_to_the_task_stream_exactly_once(streams):
    message = task()
    streams.publish_tasks([message])
    [entry] = read_all(streams)
    streams.defer_tasks([(entry.id, message, time.time() + 60)])
    # Time passes: the member's score is now in the past.
    streams.client.zadd(streams.delayed, {Streams.delayed_member(message): time.time() - 1})

    assert streams.move_due_delayed() == 1
    assert streams.move_due_delayed() == 0

    assert [e.message for e in read_all(streams)] == [message]
    assert streams.client.zcard(streams.delayed) == 0
    assert streams.client.hlen(streams.delayed_bodies) == 0


def test_move_due_delayed_moves_only_due_tasks_up_to_the_limit(streams):
    now = time.time()
    streams.publish_tasks(
        [], delayed=[(task(1), now - 3), (task(2), now - 2), (task(3), now - 1), (task(4), now + 60)]
    )

    assert streams.move_due_delayed(limit=2) == 2
    assert streams.move_due_delayed(limit=2) == 1
    assert streams.move_due_delayed(limit=2) == 0

    assert [e.message.task_id for e in read_all(streams)] == [1, 2, 3]
    assert streams.client.zrange(streams.delayed, 0, -1) == [b"4:1"]


def test_defer_without_entries_is_a_no_op(streams):
    streams.defer_tasks([])
    streams.publish_tasks([])
    streams.publish_completions([], circuit=(5, 30.0))
    streams.drop(streams.tasks, WORKERS_GROUP, [])

    assert streams.lag() == {
        "tasks": {"length": 0, "pending": 0},
        "completions": {"length": 0, "pending": 0},
        "delayed": 0,
    }


# --- heartbeats, reclaim, redeliver ----------------------------------------------------------


def test_heartbeat_resets_idle_time_and_extends_the_claim(streams):
    message = task()
    streams.publish_tasks([message])
    [entry] = read_all(streams)
    verdicts(streams, [message], claim_ms=1_000)
    time.sleep(0.15)
    assert idle_ms(streams, entry.id) >= 150

    streams.heartbeat("worker-1", [(entry.id, message)], claim_ms=10_000)

    assert idle_ms(streams, entry.id) < 100
    assert streams.client.pttl(streams.claim_key(message.task_id, message.attempt)) > 5_000


def test_reclaim_leaves_live_work_and_takes_stale_work(streams):
    live, stale = task(1), task(2)
    streams.publish_tasks([live, stale])
    live_entry, stale_entry = read_all(streams)
    time.sleep(0.15)
    streams.heartbeat("worker-1", [(live_entry.id, live)], claim_ms=CLAIM_MS)

    claimed, deleted = streams.reclaim(streams.tasks, WORKERS_GROUP, "reaper-1", min_idle_ms=100)

    assert [entry_id for entry_id, _ in claimed] == [stale_entry.id]
    assert decode_task(claimed[0][1]) == stale
    assert deleted == []
    owners = {
        p["message_id"]: p["consumer"]
        for p in streams.client.xpending_range(streams.tasks, WORKERS_GROUP, "-", "+", 10)
    }
    assert owners == {live_entry.id: b"worker-1", stale_entry.id: b"reaper-1"}

    time.sleep(0.15)
    claimed, _ = streams.reclaim(streams.tasks, WORKERS_GROUP, "reaper-1", min_idle_ms=100)
    assert sorted(entry_id for entry_id, _ in claimed) == sorted([live_entry.id, stale_entry.id])


def test_reclaim_reports_entries_deleted_while_pending(streams):
    streams.publish_tasks([task(1)])
    [entry] = read_all(streams)
    streams.client.xdel(streams.tasks, entry.id)

    claimed, deleted = streams.reclaim(streams.tasks, WORKERS_GROUP, "reaper-1", min_idle_ms=0)

    assert claimed == []
    assert deleted == [entry.id]


def test_reclaim_recreates_a_vanished_group(streams):
    streams.client.delete(streams.tasks)

    assert streams.reclaim(streams.tasks, WORKERS_GROUP, "reaper-1", min_idle_ms=0) == ([], [])
    assert streams.client.xinfo_groups(streams.tasks)[0]["name"] == WORKERS_GROUP.encode()


def test_redeliver_replaces_the_entry_and_releases_the_claim(streams):
    message = task()
    streams.publish_tasks([message])
    [entry] = read_all(streams)
    verdicts(streams, [message])
    claim = streams.claim_key(message.task_id, message.attempt)

    streams.redeliver_task(entry.id, TaskMessage(**{**message.__dict__, "deliveries": 1}))

    assert streams.client.exists(claim) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    [redelivered] = read_all(streams, "worker-2")
    assert redelivered.id != entry.id
    assert redelivered.message.deliveries == 1
    assert streams.client.xlen(streams.tasks) == 1


def test_drop_acks_and_deletes(streams):
    streams.publish_tasks([task(1), task(2)])
    first, _ = read_all(streams)

    streams.drop(streams.tasks, WORKERS_GROUP, [first.id])

    assert streams.lag()["tasks"] == {"length": 1, "pending": 1}


# --- recovery checks -------------------------------------------------------------------------


def test_accounted_for(streams):
    nowhere, delayed, claimed, done = task(1), task(2), task(3), task(4)
    streams.publish_tasks([], delayed=[(delayed, time.time() + 60)])
    verdicts(streams, [claimed])
    run_to_completion(streams, done, ok=True)

    assert streams.accounted_for([nowhere, delayed, claimed, done]) == [False, True, True, True]
    assert streams.accounted_for([task(3, attempt=2)]) == [False]


def test_survived_is_false_once_after_the_epoch_key_is_lost(streams):
    assert streams.survived() is False  # a brand-new prefix looks like a Redis that lost its data
    assert streams.survived() is True

    streams.client.delete(streams.epoch)

    assert streams.survived() is False
    assert streams.survived() is True


# --- views for operators ---------------------------------------------------------------------


def test_lag_counts_waiting_pending_and_delayed(streams):
    streams.publish_tasks([task(1), task(2), task(3)], delayed=[(task(4), time.time() + 60)])
    read_all(streams, count=1)
    add_completion(streams, completion(task(9)))

    assert streams.lag() == {
        "tasks": {"length": 3, "pending": 1},
        "completions": {"length": 1, "pending": 0},
        "delayed": 1,
    }


def test_lag_before_any_group_exists(stream_prefix):
    streams = Streams(redis_client(), stream_prefix)

    assert streams.lag() == {
        "tasks": {"length": 0, "pending": 0},
        "completions": {"length": 0, "pending": 0},
        "delayed": 0,
    }


def test_circuits_lists_every_handler(streams):
    run_to_completion(streams, task(1, handler="flaky"), ok=False, threshold=1, reset=30.0)
    run_to_completion(streams, task(2, handler="steady"), ok=True)

    circuits = streams.circuits()

    assert set(circuits) == {"flaky", "steady"}
    assert circuits["flaky"]["state"] == "open"
    assert circuits["flaky"]["failures"] == "1"
    assert {"until", "opened_at"} <= set(circuits["flaky"])
    assert circuits["steady"] == {"state": "closed", "failures": "0", "until": "0"}


def test_circuits_ignore_other_prefixes(streams, stream_prefix):
    other = Streams(streams.client, f"{stream_prefix}-other")
    other.ensure_groups()
    try:
        run_to_completion(other, task(1, handler="elsewhere"), ok=True)

        assert streams.circuits() == {}
        assert set(other.circuits()) == {"elsewhere"}
    finally:
        streams.client.delete(*streams.client.scan_iter(f"{other.prefix}:*"))


def test_an_entry_of_an_unknown_major_version_is_parked_on_the_dlq_stream(streams):
    streams.client.xadd(streams.tasks, {"v": "2.0", "body": '{"task_id": 1}'})
    [entry] = read_all(streams)
    assert entry.message is None

    streams.park_undecodable(streams.tasks, WORKERS_GROUP, [entry])

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xpending(streams.tasks, WORKERS_GROUP)["pending"] == 0
    [(_, fields)] = streams.client.xrange(streams.dlq)
    event = json.loads(fields[b"body"])
    assert event["kind"] == "undecodable"
    assert event["fields"] == {"v": "2.0", "body": '{"task_id": 1}'}
    assert "version" in event["error"]
