"""`wait()`'s schedule of long polls, driven by hand with a clock the test moves (no server)."""

import pytest

from orchestrator_client import ExecutionStatus, WaitTimedOut
from orchestrator_client.models import from_json
from orchestrator_client.waiting import wait_for_end


def status(state: str) -> ExecutionStatus:
    return from_json(
        ExecutionStatus,
        {
            "execution_id": "e1",
            "workflow_id": "w1",
            "workflow_name": "nightly",
            "status": state,
            "node_statuses": {"a": "RUNNING" if state == "RUNNING" else "COMPLETED"},
            "progress": {
                "total": 1,
                "pending": 0,
                "queued": 0,
                "running": int(state == "RUNNING"),
                "completed": int(state != "RUNNING"),
                "failed": 0,
                "skipped": 0,
                "cancelled": 0,
            },
            "running": {},
            "params": {},
            "error": None,
            "created_at": "2026-12-03T10:00:00Z",
            "started_at": "2026-12-03T10:00:00.5+00:00",
            "finished_at": None,
            "deadline": None,
            "parent": None,
            "children": [],
        },
    )


class Clock:
    """Seconds that pass only when the test says so (each answer takes as long as it waited)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_polls_until_the_execution_ends_and_returns_its_status():
    seen = []
    steps = wait_for_end("e1", timeout=60, poll_seconds=10, on_progress=seen.append, clock=Clock())

    first = next(steps)
    second = steps.send(status("RUNNING"))
    with pytest.raises(StopIteration) as done:
        steps.send(status("COMPLETED"))

    assert (first.method, first.path, first.params) == ("GET", "workflow/e1", {"wait": 10})
    assert second.params == {"wait": 10}
    assert done.value.value.status == "COMPLETED"
    assert [s.status for s in seen] == ["RUNNING", "COMPLETED"]
    assert seen[0].started_at.utcoffset().total_seconds() == 0  # "Z" and "+00:00" both parsed


def test_the_last_poll_waits_only_what_is_left_then_it_gives_up_with_the_last_status():
    clock = Clock()
    steps = wait_for_end("e1", timeout=5, poll_seconds=2, clock=clock)
    waits = [next(steps).params["wait"]]

    with pytest.raises(WaitTimedOut) as timed_out:
        while True:
            clock.now += waits[-1]
            waits.append(steps.send(status("RUNNING")).params["wait"])

    assert waits == [2, 2, 1]
    assert timed_out.value.last.status == "RUNNING" and timed_out.value.timeout == 5
    assert str(timed_out.value) == "execution e1 did not end within 5 s, still RUNNING"
