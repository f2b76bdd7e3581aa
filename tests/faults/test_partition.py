"""A worker cut off from Redis by a network partition while it runs a task (a link of the test's
own between that worker and Redis): its claim lapses, the reaper hands the task to a worker on
the right side, and the execution completes; when the link heals, the cut-off worker's late
completion is fenced off, its second effect is the idempotency key's replay, and it goes on
working."""

from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.faults.dags import node, workflow
from tests.faults.ledger import EFFECT, REPLAYED, START
from tests.faults.network import Link
from tests.polling import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SLOW = {"seconds": 3, "idempotent": True}


def test_a_partitioned_workers_task_runs_elsewhere_and_its_late_result_is_fenced(fleet, api, ledger):
    redis = urlsplit(settings.REDIS_URL)
    link = Link(redis.hostname, redis.port or 6379)
    direct = fleet.env["REDIS_URL"]
    fleet.env["REDIS_URL"] = redis._replace(netloc=f"127.0.0.1:{link.port}").geturl()
    cut_off = fleet.start("worker-cut-off", "runworker", "--concurrency", "2", supervised=False)
    fleet.env["REDIS_URL"] = direct
    fleet.start_engine(workers=0)
    fleet.wait_started([cut_off])
    execution_id = api.run(
        workflow("partition", node("start"), node("slow", "start", config=SLOW), node("after", "slow"))
    )
    poll_until(
        lambda: ledger.rows(execution_id, "slow", START), what="the slow task to start on the cut-off worker"
    )

    link.cut()
    try:
        [healthy] = fleet.start_engine(workers=1, orchestrators=0, reaper=False)
        final = api.wait_for_end(execution_id)
    finally:
        link.restore()

    assert final["status"] == "COMPLETED", final
    assert api.tasks(execution_id)["slow"]["worker"] == healthy.consumer
    poll_until(
        lambda: (
            len(ledger.rows(execution_id, "slow", EFFECT)) + len(ledger.rows(execution_id, "slow", REPLAYED))
            == 2
        ),
        what="the cut-off worker to finish its copy late",
    )
    api.wait_until_drained()
    ledger.assert_once(execution_id, ["start", "slow", "after"])
    assert cut_off.alive()
    link.close()
