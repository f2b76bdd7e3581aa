"""Work that runs too long: a workflow past its timeout ends TIMED_OUT; a task past its own
timeout fails its attempt with error category `timeout`."""

import pytest

from tests.faults.dags import node, workflow
from workflows.models import TaskAttempt

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

LONG_SECONDS = 60


def test_workflow_past_its_timeout_ends_timed_out(fleet, api):
    fleet.start_engine(workers=1)
    execution_id = api.run(
        workflow(
            "too slow overall",
            node("start"),
            node("long", "start", handler="delay", config={"seconds": LONG_SECONDS}),
            node("after", "long"),
            timeout_seconds=2,
        )
    )

    final = api.wait_for_end(execution_id)
    assert final["status"] == "TIMED_OUT", final
    assert final["error"]["code"] == "workflow_timeout"
    assert final["node_statuses"] == {"start": "COMPLETED", "long": "CANCELLED", "after": "CANCELLED"}
    # The worker stops the sleeping handler at the deadline instead of holding a slot for a minute.
    api.wait_until_drained()
    assert api.status(execution_id)["status"] == "TIMED_OUT"


def test_task_past_its_timeout_fails_with_category_timeout(fleet, api, operator_api):
    fleet.start_engine(workers=1)
    execution_id = api.run(
        workflow(
            "one task too slow",
            node("start"),
            node(
                "long",
                "start",
                handler="delay",
                config={"seconds": LONG_SECONDS},
                timeout_seconds=1,
                retry={"max_attempts": 1},
            ),
            node("after", "long"),
        )
    )

    final = api.wait_for_end(execution_id)
    assert final["status"] == "FAILED", final
    assert final["error"]["node_id"] == "long"
    assert final["node_statuses"] == {"start": "COMPLETED", "long": "FAILED", "after": "CANCELLED"}
    long = api.tasks(execution_id)["long"]
    assert long["error"]["category"] == "timeout", long["error"]
    assert long["error"]["code"] == "task_timeout"
    attempts = list(TaskAttempt.objects.filter(task_run__execution_id=execution_id, task_run__node_id="long"))
    assert [(a.attempt, a.error["category"]) for a in attempts] == [(1, "timeout")]
    letters = operator_api.dead_letters(execution_id)
    assert [(letter["node_id"], letter["category"]) for letter in letters] == [("long", "timeout")]
