"""The peers' load loop: every workflow run once, failures counted, each thread connected once."""

import threading

import pytest

from bench.closed_loop import run_closed_loop


def test_every_workflow_runs_once_across_the_clients():
    connections: list[int] = []
    ran: list[int] = []
    lock = threading.Lock()

    def connect() -> int:
        with lock:
            connections.append(len(connections))
            return connections[-1]

    def run_one(connection: int, seconds_left: float) -> None:
        assert seconds_left > 0
        with lock:
            ran.append(connection)

    outcome = run_closed_loop(workflows=40, clients=4, connect=connect, run_one=run_one, timeout=30)

    assert len(connections) == 4
    assert len(ran) == 40
    assert outcome["statuses"] == {"SUCCESS": 40}
    assert len(outcome["latencies"]) == 40
    assert outcome["errors"] == []


@pytest.mark.parametrize("failing", [1, 3])
def test_a_failed_workflow_is_counted_and_its_error_kept(failing):
    calls = iter(range(1000))
    lock = threading.Lock()

    def run_one(connection, seconds_left: float) -> None:
        with lock:
            call = next(calls)
        if call < failing:
            raise TimeoutError(f"workflow {call} timed out")

    outcome = run_closed_loop(workflows=10, clients=2, connect=object, run_one=run_one, timeout=30)

    assert outcome["statuses"] == {"SUCCESS": 10 - failing, "ERROR": failing}
    assert all(error.startswith("TimeoutError: workflow") for error in outcome["errors"])
