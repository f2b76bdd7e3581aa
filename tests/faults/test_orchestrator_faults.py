"""An orchestrator killed -9 at random moments of a wide fan-out: the DAG still completes, once."""

import random
import signal
import time

import pytest

from tests.faults.dags import fan_out

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

WIDTH = 30
KILLS = 3


def test_orchestrator_killed_during_fan_out_still_completes_exactly_once(fleet, api, ledger):
    # No hook stops an orchestrator exactly between its commit and its publish/ack, so kill it
    # repeatedly while completions stream in: some kills land in that window, others in the
    # middle of a batch's transaction or while it blocks on a read.
    fleet.start_engine(workers=2, concurrency=8, orchestrators=1)
    orchestrator = fleet.role("orchestrator")[0]
    executions = [api.run(fan_out(f"fan-out {i}", WIDTH, seconds=0.1)) for i in range(2)]
    chance = random.Random(20261129)

    for _ in range(KILLS):
        # Give the (re)started orchestrator a moment to take a batch, then kill it mid-flight.
        time.sleep(chance.uniform(0.05, 0.5))
        fleet.kill_and_wait_respawned(orchestrator)

    for execution_id in executions:
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", final
        assert set(final["node_statuses"].values()) == {"COMPLETED"}
    api.wait_until_drained()
    nodes = list(api.status(executions[0])["node_statuses"])
    assert len(nodes) == 2 * WIDTH + 2
    for execution_id in executions:
        ledger.assert_once(execution_id, nodes)
    assert orchestrator.exits == [-signal.SIGKILL] * KILLS
