"""The worker against real Redis: what it reads, admits, runs and reports."""

import asyncio
import time

import pytest

from workflows.handlers import handler
from workflows.messages import TaskMessage, decode_completion
from workflows.worker import Worker, WorkerConfig

pytestmark = pytest.mark.embedded

EXECUTION_ID = "00000000-0000-0000-0000-000000000001"


def task(task_id: int, **fields) -> TaskMessage:
    """An `input` task of EXECUTION_ID, first attempt; `fields` override or add to that."""
    return TaskMessage(
        **{
            "task_id": task_id,
            "execution_id": EXECUTION_ID,
            "node_id": f"n{task_id}",
            "handler": "input",
            "attempt": 1,
            **fields,
        }
    )


def completions(streams, expected: int, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [decode_completion(fields) for _, fields in streams.client.xrange(streams.completions)]
        if len(found) >= expected:
            return found
        time.sleep(0.02)
    pytest.fail(f"expected {expected} completions, found {len(found)}")


@pytest.fixture
def worker(streams):
    worker = Worker(streams, consumer="worker-test", config=WorkerConfig(concurrency=1, block_ms=100))
    yield worker
    worker.close()


def test_an_unreadable_entry_is_parked_and_does_not_cost_a_slot(streams, worker):
    streams.client.xadd(streams.tasks, {"v": "9.0", "body": "{}"})
    streams.publish_tasks([task(1, config={"x": 1})])

    worker.step()
    worker.step()

    [done] = completions(streams, 1)
    assert done.ok and done.output == {"x": 1}
    assert streams.client.xlen(streams.dlq) == 1


def test_a_task_of_a_cancelled_execution_is_dropped_unrun(streams, worker):
    streams.sync_stop_flags(ended=[EXECUTION_ID])
    streams.publish_tasks([task(1)])

    worker.step()

    assert streams.client.xlen(streams.tasks) == 0
    assert streams.client.xlen(streams.completions) == 0


def test_a_handler_error_is_reported_with_its_classification(streams, worker):
    streams.publish_tasks([task(1, config={"simulate_failure": True})])

    worker.step()

    [done] = completions(streams, 1)
    assert not done.ok
    assert done.error["code"] == "simulated_failure"
    assert done.error["category"] == "handler"
    assert done.error["traceback_hash"]


def test_a_task_past_its_timeout_fails_as_timeout_and_frees_its_slot(streams, worker):
    streams.publish_tasks(
        [task(1, node_id="slow", handler="delay", config={"seconds": 30}, timeout_seconds=0.3), task(2)]
    )

    worker.step()
    [timed_out] = completions(streams, 1)
    worker.step()

    assert timed_out.error["category"] == "timeout"
    assert completions(streams, 2)[1].ok


@handler("test_async_sleep")
async def async_sleep(config: dict, context) -> dict:
    await asyncio.sleep(config["seconds"])
    return {"slept": config["seconds"]}


@handler("test_not_a_number")
def not_a_number(config: dict, context) -> dict:
    return {"mean": float("nan")}


def test_an_async_handler_past_its_timeout_is_reported_as_a_timeout(streams, worker):
    streams.publish_tasks(
        [task(1, node_id="slow", handler="test_async_sleep", config={"seconds": 30}, timeout_seconds=0.3)]
    )

    worker.step()

    [done] = completions(streams, 1)
    assert done.error["category"] == "timeout"


def test_an_output_postgresql_cannot_store_is_a_permanent_failure(streams, worker):
    streams.publish_tasks([task(1, node_id="nan", handler="test_not_a_number")])

    worker.step()

    [done] = completions(streams, 1)
    assert done.error["code"] == "invalid_output"
    assert done.error["permanent"] is True


def test_an_output_over_the_configured_cap_is_a_permanent_failure(streams):
    """OUTPUT_MAX_BYTES reaches the worker through WorkerConfig (runworker passes the setting)."""
    worker = Worker(
        streams,
        consumer="worker-test",
        config=WorkerConfig(concurrency=1, block_ms=100, max_output_bytes=100),
    )
    streams.publish_tasks([task(1, config={"blob": "x" * 50}), task(2, config={"blob": "x" * 200})])

    worker.step()
    worker.step()

    done = {c.task_id: c for c in completions(streams, 2)}
    assert done[1].ok
    assert done[2].error["code"] == "output_too_large"
    assert done[2].error["permanent"] is True
    assert "100" in done[2].error["message"]


def test_close_stops_the_reporter_and_watchdog_threads(streams):
    worker = Worker(streams, consumer="worker-test", config=WorkerConfig(concurrency=1, block_ms=100))
    assert all(thread.is_alive() for thread in worker.threads)

    worker.close()

    assert not any(thread.is_alive() for thread in worker.threads)


def test_tasks_finishing_together_are_each_reported_once_and_give_their_slots_back(streams):
    """The reporter batches whatever finished together: each outcome is published exactly once,
    and every slot is free again after."""
    worker = Worker(streams, consumer="worker-many", config=WorkerConfig(concurrency=8, block_ms=50))
    try:
        streams.publish_tasks([task(i, config={"i": i}) for i in range(1, 301)])
        deadline = time.monotonic() + 10
        while streams.client.xlen(streams.completions) < 300 and time.monotonic() < deadline:
            worker.step()

        found = completions(streams, 300)
        assert sorted(c.task_id for c in found) == list(range(1, 301))
        assert all(c.ok and c.output == {"i": c.task_id} for c in found)
        assert streams.client.xlen(streams.tasks) == 0  # every task entry acked and deleted

        deadline = time.monotonic() + 5
        while worker.running and time.monotonic() < deadline:
            time.sleep(0.01)
        streams.publish_tasks([task(i) for i in range(301, 309)])
        assert worker.step() == 8  # one read for all eight: every slot came back
    finally:
        worker.close()
