"""Workers that die, are stopped, crash on a poison task, or freeze: no work is lost or doubled."""

import signal

import pytest

from tests.faults.dags import chain, node, workflow
from tests.faults.ledger import EFFECT, START
from tests.polling import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def slow_in_the_middle(name: str, seconds: float, *, after_seconds: float = 0.0) -> dict:
    return workflow(
        name,
        node("start"),
        node("slow", "start", config={"seconds": seconds}),
        node("after", "slow", config={"seconds": after_seconds}),
        node("last", "after"),
    )


def test_worker_killed_mid_task_is_reclaimed_and_the_effect_happens_once(fleet, api, ledger):
    fleet.start_engine(workers=2)
    execution_id = api.run(slow_in_the_middle("kill -9 a worker", seconds=3))
    first = poll_until(lambda: ledger.rows(execution_id, "slow", START), what="the slow task to start")
    victim = fleet.by_pid(first[0]["pid"])
    victim_consumer = victim.consumer

    fleet.kill(victim, signal.SIGKILL)

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    starts = ledger.rows(execution_id, "slow", START)
    assert len(starts) == 2, f"reclaimed once and run again elsewhere: {starts}"
    assert starts[1]["pid"] != first[0]["pid"]
    ledger.assert_once(execution_id, ["start", "slow", "after", "last"])
    slow = api.tasks(execution_id)["slow"]
    assert slow["status"] == "COMPLETED"
    assert slow["worker"] != victim_consumer
    assert ledger.rows(execution_id, "slow", EFFECT)[0]["attempt"] == slow["attempt"]
    assert victim.exits == [-signal.SIGKILL]


def test_sigterm_lets_in_flight_tasks_finish_and_exits_zero(fleet, api):
    draining = fleet.start(
        "worker-draining", "runworker", "--concurrency", "4", "--drain-timeout", "30", supervised=False
    )
    fleet.start_engine(workers=0)
    fleet.wait_started([draining])
    execution_id = api.run(
        workflow(
            "drain on SIGTERM",
            node("start"),
            *(node(f"delay_{i}", "start", handler="delay", config={"seconds": 3}) for i in range(3)),
            node("end", "delay_0", "delay_1", "delay_2"),
        )
    )

    def delays_in_flight() -> bool:
        status = api.status(execution_id)
        return status["node_statuses"]["start"] == "COMPLETED" and api.pending_tasks() == 3

    poll_until(delays_in_flight, what="the three delays to be running on the worker")
    consumer = draining.consumer

    assert fleet.stop(draining) == 0
    assert "drain timed out" not in draining.log()
    assert api.pending_tasks() == 0, "the drained worker acked everything it held"

    # The rest of the DAG needs a worker; the three delays must not run again on it.
    fresh = fleet.start("worker-fresh", "runworker", "--concurrency", "4", supervised=False)
    fleet.wait_started([fresh])
    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    tasks = api.tasks(execution_id)
    for i in range(3):
        delay = tasks[f"delay_{i}"]
        assert delay["status"] == "COMPLETED"
        assert delay["worker"] == consumer, delay
        assert delay["attempt"] == 1
        assert delay["output"] == {"slept": 3}
    assert tasks["end"]["worker"] == fresh.consumer


def test_poison_task_becomes_a_poison_dead_letter_and_other_work_flows(fleet, api, operator_api, ledger):
    fleet.env["MAX_DELIVERIES"] = "3"
    # One task per worker process, so a crash takes down only the poison task itself.
    fleet.start_engine(workers=2, concurrency=1)
    poison = api.run(
        workflow(
            "poison", node("start"), node("crash", "start", handler="fault_crash"), node("after", "crash")
        )
    )
    healthy = api.run(chain("healthy", 6, seconds=0.2))

    assert api.wait_for_end(healthy)["status"] == "COMPLETED"
    final = api.wait_for_end(poison)
    assert final["status"] == "FAILED", final
    assert final["node_statuses"] == {"start": "COMPLETED", "crash": "FAILED", "after": "CANCELLED"}
    crashes = ledger.rows(poison, "crash", START)
    assert len(crashes) == 3, f"one run per delivery, MAX_DELIVERIES of them: {crashes}"
    letters = operator_api.dead_letters(poison)
    assert len(letters) == 1, letters
    assert letters[0]["node_id"] == "crash"
    assert letters[0]["category"] == "poison"
    assert letters[0]["code"] == "poison_message"
    assert api.tasks(poison)["crash"]["error"]["category"] == "poison"
    ledger.assert_once(healthy, [f"step_{i}" for i in range(6)])
    assert sum(len(worker.exits) for worker in fleet.role("worker")) == 3


def test_paused_worker_late_completion_is_fenced_off(fleet, api, ledger):
    fleet.start_engine(workers=2)
    execution_id = api.run(slow_in_the_middle("SIGSTOP a worker", seconds=3, after_seconds=1))
    first = poll_until(lambda: ledger.rows(execution_id, "slow", START), what="the slow task to start")
    paused = fleet.by_pid(first[0]["pid"])
    paused_consumer = paused.consumer

    fleet.kill(paused, signal.SIGSTOP)
    try:
        api.wait_for(
            execution_id,
            lambda status: status["node_statuses"]["slow"] == "COMPLETED",
            what="the slow task to complete on the other worker",
        )
    finally:
        fleet.kill(paused, signal.SIGCONT)

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    # The paused handler wakes up past its sleep and finishes: its effect is the at-least-once
    # duplicate a handler's idempotency key exists for; its completion must change nothing.
    poll_until(
        lambda: len(ledger.rows(execution_id, "slow", EFFECT)) == 2, what="the paused worker to finish late"
    )
    api.wait_until_drained()
    tasks = api.tasks(execution_id)
    assert tasks["slow"]["worker"] != paused_consumer, tasks["slow"]
    assert tasks["slow"]["attempt"] == 1
    assert api.status(execution_id)["status"] == "COMPLETED"
    assert len(ledger.rows(execution_id, "slow", START)) == 2
    # Downstream was dispatched once and ran once, despite the late duplicate completion.
    for kind in (START, EFFECT):
        ledger.assert_once(execution_id, ["start", "after", "last"], kind)
