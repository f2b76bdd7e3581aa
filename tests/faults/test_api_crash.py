"""An API process killed right after a trigger commits, before it publishes the roots (the
CRASH_POINT hook, as under kill -9): the client gets no answer, the execution is RUNNING with its
roots QUEUED in PostgreSQL, and the reaper publishes them after REPUBLISH_AFTER_SECONDS; the
execution completes, each effect once."""

import pytest
from rest_framework.authtoken.models import Token

from tests.faults.api import EngineApi, Unavailable, over_http
from tests.faults.dags import chain
from workflows import crash_points
from workflows.models import Execution, TaskRun

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_an_api_killed_after_the_trigger_commits_leaves_the_roots_to_the_reaper(fleet, alice, ledger):
    token, _ = Token.objects.get_or_create(user=alice)
    # Only the API process dies there.
    server, base_url = fleet.start_api(workers=1, env={crash_points.VARIABLE: "after_trigger_commit"})
    fleet.start_engine(workers=1)
    fleet.wait_started([server])
    send = over_http(base_url, token.key)
    status, submitted = send("POST", "/api/v1/workflow", chain("crash after commit", 3))
    assert status == 201, submitted
    execution_id = submitted["execution_id"]

    with pytest.raises(Unavailable):  # the process died before answering
        send("POST", f"/api/v1/workflow/trigger/{execution_id}", {"params": {}})

    assert Execution.objects.get(pk=execution_id).status == Execution.Status.RUNNING
    assert TaskRun.objects.get(execution_id=execution_id, node_id="step_0").status == TaskRun.Status.QUEUED
    api = EngineApi(send, check=fleet.check_unsupervised_alive)
    final = api.wait_for_end(execution_id)  # the reaper re-publishes after REPUBLISH_AFTER_SECONDS
    assert final["status"] == "COMPLETED", final
    ledger.assert_once(execution_id, ["step_0", "step_1", "step_2"])
