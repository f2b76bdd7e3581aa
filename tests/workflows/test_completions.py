"""The engine driven through the API: completions release children, resolve templates and
conditions, fail and cancel, and are fenced against duplicates, stale attempts and cancellation."""

import time

import pytest

from tests.workflows.api_driver import (
    apply,
    apply_batch,
    completion,
    exhausted_failure,
    node,
    reference_payload,
    run_handler,
    status_of,
    transient_failure,
    workflow,
)
from workflows.bulk_sql import SQLITE_CHUNK_ROWS

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("own_streams", "fast_password_hashing", "both_engine_paths"),
    pytest.mark.embedded,
]


def test_completion_releases_children_and_the_last_one_completes_the_execution(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    assert list(tasks) == ["start"]

    ready = apply(run_handler(tasks["start"]))
    assert list(ready) == ["process"]
    assert status_of(alice_client, execution_id)["node_statuses"] == {
        "start": "COMPLETED",
        "process": "QUEUED",
        "finish": "PENDING",
    }

    ready = apply(run_handler(ready["process"]))
    assert list(ready) == ["finish"]
    # `output` receives its dependencies' outputs.
    assert set(ready["finish"].upstream) == {"process"}

    assert apply(run_handler(ready["finish"])) == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert set(status["node_statuses"].values()) == {"COMPLETED"}
    assert status["progress"]["completed"] == 3
    assert status["finished_at"] is not None
    assert status["error"] is None


def test_fan_in_waits_for_every_dependency(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))

    branches = apply(run_handler(tasks["input"]))
    assert sorted(branches) == ["branch_a", "branch_b", "branch_c"]
    done = {name: run_handler(branches[name]) for name in branches}
    assert apply(done["branch_a"], done["branch_b"]) == {}
    assert status_of(alice_client, execution_id)["node_statuses"]["aggregator"] == "PENDING"

    ready = apply(done["branch_c"])

    assert list(ready) == ["aggregator"]
    # Two of its parents completed in an earlier batch: their outputs are read back from the database.
    assert ready["aggregator"].upstream == {name: done[name].output for name in branches}


def test_a_fan_out_and_in_wider_than_one_sqlite_statement_runs_every_branch(alice_client, start):
    """On SQLite the task runs' INSERT, each batch's UPDATE and the join's read of its parents'
    outputs go in chunks of rows: cross one."""
    width = SQLITE_CHUNK_ROWS + 200
    names = [f"b{i}" for i in range(width)]
    execution_id, tasks = start(
        workflow(
            node("root"),
            *(node(name, deps=("root",), config={"n": name}) for name in names),
            node("join", "output", deps=tuple(names)),
        )
    )

    branches = apply(run_handler(tasks["root"]))
    assert len(branches) == width
    done = [run_handler(branches[name]) for name in names]
    assert apply(*done[:-1]) == {}
    ready = apply(done[-1])  # the others' outputs are read back from the database
    assert ready["join"].upstream == {c.node_id: c.output for c in done}
    assert apply(run_handler(ready["join"])) == {}

    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert status["progress"]["completed"] == width + 2


def test_templates_resolve_from_ancestor_outputs(alice_client, start):
    _, tasks = start(reference_payload("template_resolution"))

    ready = apply(run_handler(tasks["config_source"]))

    assert ready["fetch_data"].config == {
        "url": "https://api.example.com/data",
        "headers": {"Authorization": "Bearer test-key-123"},
    }


@pytest.mark.parametrize(
    ("answer", "taken", "skipped"),
    [("yes", "true_branch", "false_branch"), ("no", "false_branch", "true_branch")],
)
def test_conditional_payload_runs_exactly_one_branch(alice_client, start, answer, taken, skipped):
    execution_id, tasks = start(reference_payload("conditional_branching"), params={"data": answer})

    decision = apply(run_handler(tasks["start"]))
    assert decision["is_yes"].config["value_a"] == answer
    branches = apply(run_handler(decision["is_yes"]))

    assert list(branches) == [taken]
    assert status_of(alice_client, execution_id)["node_statuses"][skipped] == "SKIPPED"
    assert apply(run_handler(branches[taken])) == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "COMPLETED"
    assert status["progress"]["completed"] == 3
    assert status["progress"]["skipped"] == 1
    outputs = alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"]
    assert sorted(outputs) == sorted(["start", "is_yes", taken])


def test_exhausted_failure_fails_the_execution_and_cancels_the_rest(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))
    branches = apply(run_handler(tasks["input"]))
    apply(run_handler(branches["branch_c"]))

    ready = apply(exhausted_failure(branches["branch_a"], "upstream said no"))

    assert ready == {}
    status = status_of(alice_client, execution_id)
    assert status["status"] == "FAILED"
    assert status["node_statuses"] == {
        "input": "COMPLETED",
        "branch_a": "FAILED",
        "branch_b": "CANCELLED",
        "branch_c": "COMPLETED",
        "aggregator": "CANCELLED",
    }
    assert status["error"]["node_id"] == "branch_a"
    assert "upstream said no" in status["error"]["message"]
    assert status["finished_at"] is not None
    runs = {
        r["node_id"]: r
        for r in alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]
    }
    assert runs["branch_a"]["error"]["message"] == "upstream said no"

    # branch_b was already on the stream; its late success must not revive anything.
    assert apply(run_handler(branches["branch_b"])) == {}
    assert status_of(alice_client, execution_id)["node_statuses"]["branch_b"] == "CANCELLED"
    assert status_of(alice_client, execution_id)["status"] == "FAILED"


def test_failure_with_attempts_left_is_retried_later_not_failed(alice_client, start):
    payload = workflow(
        node("flaky", "call_external_service", config={"url": "https://x.test"}, retry={"max_attempts": 2})
    )
    execution_id, tasks = start(payload)

    dispatch = apply_batch(transient_failure(tasks["flaky"], "503 from upstream"))

    assert dispatch.tasks == []
    [(retry, due)] = dispatch.delayed
    assert (retry.task_id, retry.attempt) == (tasks["flaky"].task_id, 2)
    assert due > time.time()
    assert status_of(alice_client, execution_id)["status"] == "RUNNING"
    [run] = alice_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["results"]
    assert (run["status"], run["attempt"]) == ("QUEUED", 2)

    # The second and last attempt fails too: now the execution fails.
    apply_batch(transient_failure(retry, "503 again"))
    status = status_of(alice_client, execution_id)
    assert status["status"] == "FAILED"
    assert "503 again" in status["error"]["message"]


def test_duplicate_completion_is_applied_once(alice_client, start):
    execution_id, tasks = start(reference_payload("parallel_fanout"))
    branches = apply(run_handler(tasks["input"]))
    done_a = run_handler(branches["branch_a"])

    assert apply(done_a, done_a) == {}
    # Redelivered in a later batch: not a second finished dependency of the aggregator.
    assert apply(done_a) == {}
    # A redelivered `input` may re-publish its queued children, but as the same attempts.
    again = apply(run_handler(tasks["input"]))
    assert {(t.task_id, t.attempt) for t in again.values()} <= {
        (t.task_id, t.attempt) for t in branches.values()
    }
    assert apply(run_handler(branches["branch_b"])) == {}

    status = status_of(alice_client, execution_id)
    assert status["node_statuses"]["aggregator"] == "PENDING"
    assert status["progress"]["completed"] == 3
    assert status["progress"]["queued"] == 1
    assert list(apply(run_handler(branches["branch_c"]))) == ["aggregator"]


def test_completion_with_a_stale_attempt_is_ignored(alice_client, start):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    current = tasks["start"].attempt

    stale = completion(tasks["start"], output={"from": "an attempt that was reclaimed"}, attempt=current - 1)
    assert apply(stale) == {}

    assert status_of(alice_client, execution_id)["node_statuses"]["start"] == "QUEUED"
    assert alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"] == {}
    assert list(apply(run_handler(tasks["start"]))) == ["process"]


def test_completion_for_a_cancelled_execution_changes_nothing(alice_client, start, cancel):
    execution_id, tasks = start(reference_payload("linear_workflow"))
    assert cancel(execution_id).status_code == 200
    before = status_of(alice_client, execution_id)

    assert apply(run_handler(tasks["start"])) == {}

    after = status_of(alice_client, execution_id)
    assert after["status"] == "CANCELLED"
    assert after["node_statuses"] == before["node_statuses"]
    assert after["finished_at"] == before["finished_at"]
    assert alice_client.get(f"/api/v1/workflow/{execution_id}/results").json()["outputs"] == {}
