"""Re-run from failure and re-trigger through the REST API, with real worker and orchestrator
processes doing the work."""

import pytest

from dlq.models import DeadLetter
from workflows.models import Execution

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def post(api, path: str, body: dict | None = None) -> dict:
    response = api.client.post(f"/api/v1/workflow/{path}", body or {}, format="json")
    assert response.status_code == 202, f"POST {path}: {response.status_code} {response.content[:2000]!r}"
    return response.json()


def broken_chain(fixed_file: str) -> dict:
    """a -> b -> c, where b fails for good until `fixed_file` exists."""
    return {
        "name": "fix and re-run",
        "dag": {
            "nodes": [
                {"id": "a", "handler": "input", "config": {"x": 1}},
                {
                    "id": "b",
                    "handler": "e2e_fail_until",
                    "dependencies": ["a"],
                    "config": {"fixed_file": fixed_file},
                    "retry": {"max_attempts": 1},
                },
                {
                    "id": "c",
                    "handler": "e2e_echo",
                    "dependencies": ["b"],
                    "config": {"b": "{{ b.fixed_on_attempt }}"},
                },
            ]
        },
    }


def test_rerun_from_failure_runs_the_fixed_node_and_the_rest_but_not_what_completed(api, alice, tmp_path):
    fixed = tmp_path / "fixed"
    execution_id = api.run(broken_chain(str(fixed)))
    failed = api.wait_for_end(execution_id)
    assert failed["status"] == "FAILED"
    assert failed["node_statuses"] == {"a": "COMPLETED", "b": "FAILED", "c": "CANCELLED"}
    a_before = api.tasks(execution_id)["a"]
    assert DeadLetter.objects.get(execution_id=execution_id).status == DeadLetter.Status.OPEN

    fixed.touch()
    assert post(api, f"{execution_id}/rerun")["status"] == "RUNNING"

    done = api.wait_for_end(execution_id)
    assert done["status"] == "COMPLETED", done
    tasks = api.tasks(execution_id)
    assert (tasks["a"]["attempt"], tasks["a"]["finished_at"], tasks["a"]["output"]) == (
        1,
        a_before["finished_at"],
        a_before["output"],
    )
    assert tasks["b"]["attempt"] == 2
    assert [a["attempt"] for a in tasks["b"]["failed_attempts"]] == [1]
    assert tasks["b"]["failed_attempts"][0]["error"]["code"] == "not_fixed"
    assert tasks["c"]["output"]["echo"] == {"b": 2}
    letter = DeadLetter.objects.get(execution_id=execution_id)
    assert (letter.status, letter.resolved_by, letter.note) == (
        DeadLetter.Status.RETRIED,
        alice,
        "re-run from failure",
    )


def test_rerun_of_a_cancelled_execution_runs_its_delay_node_again(api):
    execution_id = api.run(
        {
            "name": "cancel mid-nap, then re-run",
            "dag": {
                "nodes": [
                    {"id": "a", "handler": "input"},
                    {"id": "nap", "handler": "delay", "dependencies": ["a"], "config": {"seconds": 2}},
                    {"id": "c", "handler": "e2e_echo", "dependencies": ["nap"]},
                ]
            },
        }
    )
    api.wait_until(
        lambda: api.status(execution_id)["node_statuses"]["nap"] == "RUNNING",
        what="the delay node to run on a worker",
    )
    assert api.cancel(execution_id)["status"] == "CANCELLED"

    assert post(api, f"{execution_id}/rerun")["status"] == "RUNNING"

    done = api.wait_for_end(execution_id)
    assert done["status"] == "COMPLETED", done
    tasks = api.tasks(execution_id)
    assert (tasks["a"]["attempt"], tasks["nap"]["attempt"], tasks["c"]["attempt"]) == (1, 2, 1)
    assert tasks["nap"]["output"] == {"slept": 2}


def test_retrigger_runs_a_new_execution_with_new_params(api):
    payload = {
        "name": "retrigger",
        "dag": {
            "nodes": [
                {"id": "a", "handler": "input"},
                {"id": "b", "handler": "e2e_echo", "dependencies": ["a"], "config": {"n": "{{ params.n }}"}},
            ]
        },
    }
    old_id = api.run(payload, {"n": 1})
    assert api.wait_for_end(old_id)["status"] == "COMPLETED"
    old_outputs = api.outputs(old_id)

    new = post(api, f"{old_id}/retrigger", {"params": {"n": 2}})

    assert new["execution_id"] != old_id
    assert api.wait_for_end(new["execution_id"])["status"] == "COMPLETED"
    assert api.outputs(new["execution_id"])["b"]["echo"] == {"n": 2}
    assert api.outputs(old_id) == old_outputs
    assert Execution.objects.get(pk=old_id).params == {"n": 1}
