"""Executions that do not complete: cancelled while a node runs, and failed by a handler."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.embedded]

SLEEP_SECONDS = 2


def sleeper_payload(started_file: str, finished_file: str) -> dict:
    return {
        "name": "cancel me",
        "dag": {
            "nodes": [
                {"id": "start", "handler": "input", "dependencies": [], "config": {}},
                {
                    "id": "sleeper",
                    "handler": "e2e_sleep",
                    "dependencies": ["start"],
                    "config": {
                        "seconds": SLEEP_SECONDS,
                        "started_file": started_file,
                        "finished_file": finished_file,
                    },
                },
                {"id": "after", "handler": "noop", "dependencies": ["sleeper"], "config": {}},
                {"id": "last", "handler": "e2e_echo", "dependencies": ["after"], "config": {}},
            ]
        },
    }


def streams_empty(streams) -> bool:
    lag = streams.lag()
    return all(lag[name] == {"length": 0, "pending": 0} for name in ("tasks", "completions"))


def test_cancel_stops_a_running_execution_and_ignores_its_late_completion(api, streams, tmp_path):
    started, finished = tmp_path / "started", tmp_path / "finished"
    execution_id = api.run(sleeper_payload(str(started), str(finished)))
    api.wait_until(started.exists, what="the sleeper to start on a worker")

    assert api.cancel(execution_id)["status"] == "CANCELLED"
    cancelled = api.status(execution_id)
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["node_statuses"] == {
        "start": "COMPLETED",
        "sleeper": "CANCELLED",
        "after": "CANCELLED",
        "last": "CANCELLED",
    }

    api.wait_until(finished.exists, what="the sleeper to finish")
    # The worker acks its task in the same atomic call that publishes the completion, and the
    # orchestrator acks (and deletes) a completion only after applying it: both streams empty
    # means the sleeper's late completion has been handled.
    api.wait_until(lambda: streams_empty(streams), what="the late completion to be consumed")

    final = api.status(execution_id)
    assert final["status"] == "CANCELLED"
    assert final["error"]["code"] == "cancelled"
    assert final["node_statuses"] == cancelled["node_statuses"]
    tasks = api.tasks(execution_id)
    assert tasks["sleeper"]["output"] is None
    for never_ran in ("after", "last"):
        assert tasks[never_ran]["attempt"] == 0, tasks[never_ran]
        assert tasks[never_ran]["started_at"] is None
        assert tasks[never_ran]["worker"] == ""
    assert set(api.outputs(execution_id)) == {"start"}


FAILING_WORKFLOW = {
    "name": "fails in the middle",
    "dag": {
        "nodes": [
            {"id": "start", "handler": "input", "dependencies": [], "config": {}},
            {
                "id": "flaky_call",
                "handler": "call_external_service",
                "dependencies": ["start"],
                "config": {"url": "https://api.example.com/x", "simulate_failure": True},
                # No retries: moving a delayed retry back into the stream is the reaper's job,
                # and only workers and orchestrators run here.
                "retry": {"max_attempts": 1},
            },
            {"id": "after", "handler": "noop", "dependencies": ["flaky_call"], "config": {}},
            {"id": "last", "handler": "e2e_echo", "dependencies": ["after"], "config": {}},
        ]
    },
}


def test_a_handler_failure_fails_the_execution_and_cancels_downstream(api, operator_client):
    execution_id = api.run(FAILING_WORKFLOW)

    final = api.wait_for_end(execution_id)
    assert final["status"] == "FAILED"
    assert final["node_statuses"] == {
        "start": "COMPLETED",
        "flaky_call": "FAILED",
        "after": "CANCELLED",
        "last": "CANCELLED",
    }
    error = final["error"]
    assert error["node_id"] == "flaky_call"
    assert "flaky_call" in error["message"]
    assert "simulated failure" in error["message"]
    tasks = api.tasks(execution_id)
    assert tasks["flaky_call"]["error"]["code"] == "simulated_failure"
    for never_ran in ("after", "last"):
        assert tasks[never_ran]["attempt"] == 0, tasks[never_ran]
        assert tasks[never_ran]["started_at"] is None
    # The exhausted failure is parked as a dead letter for an operator to triage.
    response = operator_client.get("/api/v1/admin/dlq", {"execution": execution_id})
    assert response.status_code == 200, response.content
    [letter] = response.json()["results"]
    assert (letter["node_id"], letter["code"], letter["status"]) == (
        "flaky_call",
        "simulated_failure",
        "OPEN",
    )


def test_a_failure_stops_the_rest_of_the_execution(api, streams):
    """A node that fails for good ends the execution, and the work still out there stops: a
    ten-minute sibling is stopped by its worker (or dropped before it starts)."""
    execution_id = api.run(
        {
            "name": "fails beside a long task",
            "dag": {
                "nodes": [
                    {"id": "start", "handler": "input", "dependencies": [], "config": {}},
                    {
                        "id": "broken",
                        "handler": "input",
                        "dependencies": ["start"],
                        "config": {"simulate_failure": True},
                        "retry": {"max_attempts": 1},
                    },
                    {"id": "long", "handler": "delay", "dependencies": ["start"], "config": {"seconds": 600}},
                ]
            },
        }
    )

    final = api.wait_for_end(execution_id)
    assert final["status"] == "FAILED"
    assert final["node_statuses"] == {"start": "COMPLETED", "broken": "FAILED", "long": "CANCELLED"}
    # Acked without a completion once stopped; were it still sleeping, its entry would be pending.
    api.wait_until(lambda: streams_empty(streams), what="the long task to be stopped")
    assert api.tasks(execution_id)["long"]["output"] is None
