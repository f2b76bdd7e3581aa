"""Two executions of one workflow, in flight at the same time, each see only their own params."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PARALLEL_NODES = 20

WORKFLOW = {
    "name": "two at once",
    "dag": {
        "nodes": [
            {"id": "start", "handler": "input", "dependencies": [], "config": {}},
            {
                # Waits until the other execution's rendezvous has started: ending at all (with
                # saw_until_file) proves the two executions were running at the same time.
                "id": "rendezvous",
                "handler": "e2e_sleep",
                "dependencies": ["start"],
                "config": {
                    "seconds": 30,
                    "started_file": "{{ params.started_file }}",
                    "until_file": "{{ params.other_started_file }}",
                },
            },
            *(
                {
                    "id": f"echo_{i:02d}",
                    "handler": "e2e_echo",
                    "dependencies": ["start"],
                    "config": {"who": "{{ params.who }}", "from_start": "{{ start.who }}", "i": i},
                }
                for i in range(PARALLEL_NODES)
            ),
            {
                "id": "finish",
                "handler": "output",
                "dependencies": ["rendezvous", *(f"echo_{i:02d}" for i in range(PARALLEL_NODES))],
                "config": {"who": "{{ params.who }}"},
            },
        ]
    },
}


def test_two_executions_of_one_workflow_do_not_interfere(api, tmp_path):
    submitted = api.submit(WORKFLOW)
    first = submitted["execution_id"]
    second = api.new_execution(submitted["workflow_id"])
    params = {
        first: {
            "who": "ada",
            "started_file": str(tmp_path / "ada-started"),
            "other_started_file": str(tmp_path / "bob-started"),
        },
        second: {
            "who": "bob",
            "started_file": str(tmp_path / "bob-started"),
            "other_started_file": str(tmp_path / "ada-started"),
        },
    }
    for execution_id, own_params in params.items():
        api.trigger(execution_id, own_params)

    for execution_id, own_params in params.items():
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", final["error"]
        assert final["params"] == own_params
        who = own_params["who"]
        outputs = api.outputs(execution_id)
        assert outputs["rendezvous"] == {"saw_until_file": True}
        assert outputs["start"]["who"] == who
        for i in range(PARALLEL_NODES):
            echo = outputs[f"echo_{i:02d}"]
            assert echo["execution_id"] == execution_id
            assert echo["echo"] == {"who": who, "from_start": who, "i": i}
        assert outputs["finish"]["who"] == who
        assert outputs["finish"]["inputs"]["rendezvous"] == {"saw_until_file": True}
        for i in range(PARALLEL_NODES):
            assert outputs["finish"]["inputs"][f"echo_{i:02d}"] == outputs[f"echo_{i:02d}"]
