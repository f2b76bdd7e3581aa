"""The reference payloads in shared/payloads/, submitted unchanged, run to completion.

One test, so the engine's processes start once for all eight payloads (and a second run of the
conditional one); the checks specific to a payload are functions of their own.
"""

import json

import pytest

from tests import reference_payloads

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.embedded]

PAYLOADS_DIR = reference_payloads.DIRECTORY
PAYLOAD_NAMES = [
    "complex_dag",
    "conditional_branching",
    "linear_workflow",
    "llm_service",
    "parallel_api_fetcher",
    "parallel_fanout",
    "template_resolution",
    "timeout_test",
]


def reference_payload(name: str) -> dict:
    return json.loads((PAYLOADS_DIR / f"{name}.json").read_text())


def test_every_reference_payload_completes(api):
    assert sorted(path.stem for path in PAYLOADS_DIR.glob("*.json")) == PAYLOAD_NAMES
    submitted = {name: api.submit(reference_payload(name)) for name in PAYLOAD_NAMES}
    executions = {name: body["execution_id"] for name, body in submitted.items()}
    for execution_id in executions.values():
        api.trigger(execution_id)
    conditional_yes = api.new_execution(submitted["conditional_branching"]["workflow_id"])
    api.trigger(conditional_yes, {"data": "yes"})

    for name, execution_id in [*executions.items(), ("conditional_branching", conditional_yes)]:
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", (name, final)
        assert final["error"] is None
        assert set(final["node_statuses"].values()) <= {"COMPLETED", "SKIPPED"}, (name, final)
        node_count = len(reference_payload(name)["dag"]["nodes"])
        assert final["progress"]["total"] == node_count
        assert final["progress"]["completed"] + final["progress"]["skipped"] == node_count

    check_one_branch_ran(api, conditional_yes, decision=True, ran="true_branch", skipped="false_branch")
    check_one_branch_ran(
        api, executions["conditional_branching"], decision=False, ran="false_branch", skipped="true_branch"
    )
    check_templates_resolved(api, executions["template_resolution"])


def check_one_branch_ran(api, execution_id: str, *, decision: bool, ran: str, skipped: str) -> None:
    """conditional_branching: {"data": "yes"} takes the true branch; no params, the false one."""
    assert api.status(execution_id)["node_statuses"] == {
        "start": "COMPLETED",
        "is_yes": "COMPLETED",
        ran: "COMPLETED",
        skipped: "SKIPPED",
    }
    outputs = api.outputs(execution_id)
    assert outputs["is_yes"]["result"] is decision
    assert outputs[ran]["url"] == f"http://mock.service/{str(decision).lower()}"
    assert skipped not in outputs
    assert api.tasks(execution_id)[skipped]["attempt"] == 0


def check_templates_resolved(api, execution_id: str) -> None:
    """template_resolution: every config reached its worker with the upstream values filled in."""
    tasks = api.tasks(execution_id)
    assert tasks["fetch_data"]["config"] == {
        "url": "https://api.example.com/data",
        "headers": {"Authorization": "Bearer test-key-123"},
    }
    # A reference inside a longer string is interpolated as JSON text; key order is not
    # guaranteed (PostgreSQL jsonb), so compare the parsed value.
    prefix = "Process this data: "
    prompt = tasks["process_data"]["config"]["prompt"]
    assert prompt.startswith(prefix)
    assert json.loads(prompt.removeprefix(prefix)) == tasks["fetch_data"]["output"]["response"]
    # A string that is exactly one reference takes the referenced value itself.
    assert tasks["output"]["config"] == {"summary": tasks["process_data"]["output"]["result"]}
    assert "{{" not in json.dumps([task["config"] for task in tasks.values()])

    outputs = api.outputs(execution_id)
    assert outputs["fetch_data"]["url"] == "https://api.example.com/data"
    assert outputs["output"]["summary"] == outputs["process_data"]["result"]
    assert outputs["output"]["inputs"] == {"process_data": outputs["process_data"]}
