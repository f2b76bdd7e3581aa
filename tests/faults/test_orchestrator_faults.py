"""An orchestrator killed -9 at random moments of a wide fan-out, or dying between the chunks of
one: the DAG still completes, every effect once."""

import random
import signal
import time

import pytest

from tests.faults.dags import fan_out, node, workflow
from tests.polling import poll_until
from workflows.crash_points import VARIABLE as CRASH_POINT_VARIABLE
from workflows.streams import PUBLISH_CHUNK

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


def test_orchestrator_dying_between_the_chunks_of_a_fan_out_completes_it_once(fleet, api, ledger):
    """A fan-out wider than PUBLISH_CHUNK goes out in chunks, its completion's ack with the last.
    The orchestrator dies right after the first chunk (CRASH_POINT between_publish_chunks): those
    branches run, the rest were never published, and the root's completion is unacked. The
    reaper hands it back to the respawned orchestrator, which applies it again (fenced: nothing
    changes) and publishes the branches still QUEUED again; admission drops the copies of those
    that already ran. Every node's effect happens once."""
    branches = [f"branch_{i:03d}" for i in range(PUBLISH_CHUNK + 40)]
    fleet.env[CRASH_POINT_VARIABLE] = "between_publish_chunks"
    orchestrator = fleet.start("orchestrator-crashing", "runorchestrator")
    del fleet.env[CRASH_POINT_VARIABLE], orchestrator.env[CRASH_POINT_VARIABLE]
    fleet.start_engine(workers=2, concurrency=8, orchestrators=0)
    fleet.wait_started([orchestrator])

    execution_id = api.run(
        workflow(
            "crash between chunks",
            node("root"),
            *(node(b, "root") for b in branches),
            node("join", *branches),
        )
    )
    poll_until(lambda: orchestrator.exits, what="the orchestrator to die between two chunks")

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    assert orchestrator.exits == [1]
    api.wait_until_drained()
    ledger.assert_once(execution_id, ["root", *branches, "join"])
