"""Wide and deep DAGs run to completion across several workers and orchestrators."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.embedded]

FAN_OUT_WIDTH = 500
CHAIN_DEPTH = 100


def fan_out_payload(width: int) -> dict:
    branches = [f"branch_{i:03d}" for i in range(width)]
    return {
        "name": f"fan-out {width}",
        "dag": {
            "nodes": [
                {"id": "root", "handler": "input", "dependencies": [], "config": {"width": width}},
                *(
                    {
                        "id": branch,
                        "handler": "e2e_echo",
                        "dependencies": ["root"],
                        "config": {"index": i, "width": "{{ root.width }}"},
                    }
                    for i, branch in enumerate(branches)
                ),
                {"id": "join", "handler": "output", "dependencies": branches, "config": {}},
            ]
        },
    }


def chain_payload(depth: int) -> dict:
    nodes = [{"id": "step_000", "handler": "e2e_echo", "dependencies": [], "config": {"step": 0}}]
    for i in range(1, depth):
        parent = f"step_{i - 1:03d}"
        nodes.append(
            {
                "id": f"step_{i:03d}",
                "handler": "e2e_echo",
                "dependencies": [parent],
                "config": {"step": i, "previous": f"{{{{ {parent}.echo.step }}}}"},
            }
        )
    return {"name": f"chain {depth}", "dag": {"nodes": nodes}}


def test_a_500_wide_fan_out_joins_every_branch(api):
    execution_id = api.run(fan_out_payload(FAN_OUT_WIDTH))

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final["error"]
    assert final["progress"]["completed"] == FAN_OUT_WIDTH + 2
    inputs = api.outputs(execution_id)["join"]["inputs"]
    assert len(inputs) == FAN_OUT_WIDTH
    for i in range(FAN_OUT_WIDTH):
        assert inputs[f"branch_{i:03d}"]["echo"] == {"index": i, "width": FAN_OUT_WIDTH}
    # Competing consumers: each worker takes at most its free slots, so both get a share.
    tasks = api.tasks(execution_id)
    assert len({task["worker"] for node_id, task in tasks.items() if node_id.startswith("branch_")}) == 2


def test_a_100_deep_chain_runs_in_order(api):
    execution_id = api.run(chain_payload(CHAIN_DEPTH))

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final["error"]
    outputs = api.outputs(execution_id)
    assert len(outputs) == CHAIN_DEPTH
    # Each step's config read its parent's output, so it cannot have run before the parent ended.
    for i in range(1, CHAIN_DEPTH):
        assert outputs[f"step_{i:03d}"]["echo"] == {"step": i, "previous": i - 1}
    assert {task["attempt"] for task in api.tasks(execution_id).values()} == {1}
