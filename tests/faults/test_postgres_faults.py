"""PostgreSQL restarted in the middle of a run (a cluster of the test's own): every runner
reconnects and the runs complete, each effect once.

The engine's database here is the throwaway cluster, so the test drives it over real HTTP
through an API server of its own; the effects ledger stays in pytest-django's database.
"""

import pytest

from tests.faults.api import EngineApi, over_http
from tests.faults.dags import chain, fan_out, node, workflow
from tests.faults.ledger import EFFECT
from tests.faults.processes import prepare_database
from tests.polling import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_postgres_restarted_runners_reconnect_and_runs_complete(throwaway_postgres, fleet, ledger, tmp_path):
    fleet.env.update(DATABASE_URL=throwaway_postgres.url("orchestrator"), VAR_DIR=str(tmp_path / "var"))
    token = prepare_database(fleet.env)
    server, base_url = fleet.start_api()
    fleet.start_engine(workers=2)
    fleet.wait_started([server])
    api = EngineApi(over_http(base_url, token), check=fleet.check_unsupervised_alive)
    executions = [api.run(chain("chain", 6, seconds=0.3)), api.run(fan_out("fan-out", 4, seconds=0.6))]
    poll_until(
        lambda: sum(sum(ledger.counts(e, EFFECT).values()) for e in executions) >= 3,
        what="the runs to be under way",
    )

    throwaway_postgres.restart()

    for execution_id in executions:
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", final
    api.wait_until_drained()
    for execution_id in executions:
        ledger.assert_once(execution_id, list(api.status(execution_id)["node_statuses"]))
    # Timing a workflow out is the reaper's database work: it too must have reconnected.
    late = api.run(
        workflow(
            "after the restart",
            node("start"),
            node("long", "start", handler="delay", config={"seconds": 60}),
            timeout_seconds=1,
        )
    )
    final = api.wait_for_end(late)
    assert final["status"] == "TIMED_OUT", final
