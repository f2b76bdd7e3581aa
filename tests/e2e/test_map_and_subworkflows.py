"""Dynamic fan-out and sub-workflows across real runner processes: a `map_over` node's items
spread over the workers and come back in order; a `workflow` node's child execution runs on the
same runners and hands its outputs to the parent."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.embedded]

ITEMS = 60


def test_a_mapped_node_fans_out_over_the_workers_and_joins_in_order(api):
    execution_id = api.run(
        {
            "name": "map e2e",
            "dag": {
                "nodes": [
                    {
                        "id": "list",
                        "handler": "input",
                        "config": {"items": [f"item-{i}" for i in range(ITEMS)]},
                    },
                    {
                        "id": "each",
                        "handler": "e2e_echo",
                        "dependencies": ["list"],
                        "map_over": "{{ list.items }}",
                        "config": {"value": "{{ item }}", "position": "{{ index }}"},
                    },
                    {"id": "join", "handler": "output", "dependencies": ["each"], "config": {}},
                ]
            },
        }
    )

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final["error"]
    assert final["progress"] == {**final["progress"], "total": ITEMS + 3, "completed": ITEMS + 3}
    results = api.outputs(execution_id)["join"]["inputs"]["each"]
    assert [result["echo"] for result in results] == [
        {"value": f"item-{i}", "position": i} for i in range(ITEMS)
    ]
    workers = {
        task["worker"] for node_id, task in api.tasks(execution_id).items() if node_id.startswith("each[")
    }
    assert len(workers) == 2  # both workers took items


def test_a_workflow_node_runs_a_child_execution_and_passes_on_its_outputs(api):
    api.submit(
        {
            "name": "e2e child",
            "dag": {
                "nodes": [{"id": "greet", "handler": "e2e_echo", "config": {"hello": "{{ params.who }}"}}]
            },
        }
    )

    parent_id = api.run(
        {
            "name": "e2e parent",
            "dag": {
                "nodes": [
                    {"id": "who", "handler": "input", "config": {"name": "Ada"}},
                    {
                        "id": "child",
                        "handler": "workflow",
                        "dependencies": ["who"],
                        "config": {"workflow": "e2e child", "params": {"who": "{{ who.name }}"}},
                    },
                    {
                        "id": "after",
                        "handler": "e2e_echo",
                        "dependencies": ["child"],
                        "config": {"heard": "{{ child.outputs.greet.echo.hello }}"},
                    },
                ]
            },
        }
    )

    final = api.wait_for_end(parent_id)
    assert final["status"] == "COMPLETED", final["error"]
    [child] = final["children"]
    assert (child["node_id"], child["status"]) == ("child", "COMPLETED")
    assert api.outputs(parent_id)["after"]["echo"] == {"heard": "Ada"}
    assert api.status(child["execution_id"])["parent"] == {"execution_id": parent_id, "node_id": "child"}
