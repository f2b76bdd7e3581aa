"""A worker that dies on either side of publishing a completion (the CRASH_POINT hook in
workflows/worker.py): the work is neither lost nor applied twice, and an effect made with the
task's idempotency key happens once."""

import time

import pytest

from tests.faults.dags import node, workflow
from tests.faults.ledger import EFFECT, REPLAYED, START
from tests.faults.processes import Fleet, Runner
from tests.polling import poll_until
from workflows.crash_points import VARIABLE as CRASH_POINT_VARIABLE
from workflows.messages import decode_task
from workflows.models import TaskRun
from workflows.streams import WORKERS_GROUP

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

DOWNSTREAM = ["downstream", "last"]
# Beyond the visibility timeout (2 s): the respawn of a worker process and a reaper pass, on a
# busy 2-core CI machine.
RECOVERY_SLACK_SECONDS = 12.0


def effect_then_downstream(name: str) -> dict:
    return workflow(
        name,
        node("effect", config={"idempotent": True}),
        node("downstream", "effect"),
        node("last", "downstream"),
    )


def start_with_crashing_worker(fleet: Fleet, point: str) -> Runner:
    """The only worker, whose first process dies at `point` (its respawns run normally), plus an
    orchestrator and the reaper."""
    fleet.env[CRASH_POINT_VARIABLE] = point
    worker = fleet.start("worker-crashing", "runworker", "--concurrency", "4", "--drain-timeout", "2")
    del fleet.env[CRASH_POINT_VARIABLE], worker.env[CRASH_POINT_VARIABLE]
    fleet.start_engine(workers=0)
    fleet.wait_started([worker])
    return worker


def wait_for_crash(worker: Runner) -> float:
    poll_until(lambda: worker.exits, what=f"{worker.name} to die at its crash point")
    assert worker.exits == [1], worker.exits
    return time.monotonic()


def test_worker_dying_before_it_publishes_is_reclaimed_and_the_effect_happens_once(fleet, api, ledger):
    """The handler did its effect, its completion was never published: the reaper reclaims the
    task after the visibility timeout and the respawned worker runs it again; the second call's
    effect is answered by the idempotency key (REPLAYED), and downstream runs once.
    Bound: the node completes within VISIBILITY_TIMEOUT (2 s) + 12 s of the crash."""
    worker = start_with_crashing_worker(fleet, "before_publish")
    execution_id = api.run(effect_then_downstream("crash before publish"))
    crashed = wait_for_crash(worker)

    api.wait_for(
        execution_id,
        lambda status: status["node_statuses"]["effect"] == "COMPLETED",
        what="the reclaimed task to complete",
    )
    recovery = time.monotonic() - crashed
    final = api.wait_for_end(execution_id)

    assert final["status"] == "COMPLETED", final
    assert recovery < 2.0 + RECOVERY_SLACK_SECONDS, f"recovered in {recovery:.1f} s"
    starts = ledger.rows(execution_id, "effect", START)
    assert len(starts) == 2, f"run once by the crashed process, once after the reclaim: {starts}"
    assert starts[0]["pid"] != starts[1]["pid"]
    ledger.assert_once(execution_id, ["effect"], EFFECT)
    ledger.assert_once(execution_id, ["effect"], REPLAYED)
    assert ledger.rows(execution_id, "effect", EFFECT)[0]["pid"] == starts[0]["pid"]
    for kind in (START, EFFECT):
        ledger.assert_once(execution_id, DOWNSTREAM, kind)
    api.wait_until_drained()


def test_worker_dying_after_it_publishes_leaves_nothing_to_run_again(fleet, api, ledger, streams):
    """Publishing and acking are one Lua script (COMPLETE in workflows/streams.py, called by
    Streams.publish_completions): the completion is added, the delivery marked done and the task
    entry acked and deleted together, so no crash can fall between publish and ack. The crash
    point is right after that script returns, before the reporter's bookkeeping. Then the task
    entry is in nobody's pending list (the reaper has nothing to reclaim) and its delivery is
    marked done: the completion is applied once, the task never runs again, downstream's effect
    happens once (its task may have been read by the dying worker, then reclaimed).
    Bound: the execution ends within 12 s of the crash (the respawn runs downstream)."""
    worker = start_with_crashing_worker(fleet, "after_publish")
    victim = worker.consumer
    execution_id = api.run(effect_then_downstream("crash after publish"))
    crashed = wait_for_crash(worker)

    effect = TaskRun.objects.get(execution_id=execution_id, node_id="effect")
    held = streams.client.xpending_range(streams.tasks, WORKERS_GROUP, "-", "+", 100, consumername=victim)
    # The effect's entry is acked and deleted with the publish. Its reader may have taken the
    # downstream task in the moment before the process died: that one the reaper reclaims.
    held_nodes = [
        decode_task(fields).node_id
        for entry in held
        for _, fields in streams.client.xrange(streams.tasks, entry["message_id"], entry["message_id"])
    ]
    assert "effect" not in held_nodes and len(held_nodes) == len(held), f"the dead worker holds {held}"
    assert streams.client.exists(streams.done_key(effect.pk, effect.attempt))

    final = api.wait_for_end(execution_id)
    ended = time.monotonic() - crashed
    assert final["status"] == "COMPLETED", final
    assert ended < RECOVERY_SLACK_SECONDS, f"ended {ended:.1f} s after the crash"
    effect.refresh_from_db()
    assert (effect.status, effect.attempt, effect.worker) == (TaskRun.Status.COMPLETED, 1, victim)
    ledger.assert_once(execution_id, ["effect"], START)
    ledger.assert_once(execution_id, ["effect", *DOWNSTREAM], EFFECT)
    assert ledger.rows(execution_id, "effect", REPLAYED) == []
    api.wait_until_drained()
    assert len(ledger.rows(execution_id, "effect", START)) == 1, "run again after the drain"
