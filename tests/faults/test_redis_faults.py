"""Redis restarted in the middle of a run, with its data kept and with its data gone: the runs
resume and complete (in the second case rebuilt from PostgreSQL), each effect once."""

import pytest

from tests.faults.dags import chain, fan_out
from tests.faults.ledger import EFFECT, START
from tests.polling import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def start_runs(api) -> list[str]:
    return [api.run(fan_out("fan-out", 6, seconds=1.0)), api.run(chain("chain", 6, seconds=0.3))]


def in_flight(ledger, execution_ids: list[str]) -> int:
    """Handlers that started and have not done their effect yet."""
    started = sum(sum(ledger.counts(e, START).values()) for e in execution_ids)
    done = sum(sum(ledger.counts(e, EFFECT).values()) for e in execution_ids)
    return started - done


def assert_completed_once(api, ledger, execution_ids: list[str]) -> None:
    for execution_id in execution_ids:
        final = api.wait_for_end(execution_id)
        assert final["status"] == "COMPLETED", final
    api.wait_until_drained()
    for execution_id in execution_ids:
        status = api.status(execution_id)
        assert set(status["node_statuses"].values()) == {"COMPLETED"}, status
        ledger.assert_once(execution_id, list(status["node_statuses"]))


@pytest.mark.parametrize(
    "appendonly",
    [
        pytest.param(True, id="with its data"),
        # Streams, groups, claims, done markers, the epoch key: all gone; rebuilt from PostgreSQL.
        pytest.param(False, id="empty"),
    ],
)
def test_redis_restarted_mid_run_runs_complete_each_effect_once(
    throwaway_redis, fleet, api, ledger, appendonly
):
    server = throwaway_redis(appendonly=appendonly)
    fleet.env["REDIS_URL"] = server.url
    fleet.start_engine(workers=2)
    executions = start_runs(api)
    poll_until(lambda: in_flight(ledger, executions) >= 3, what="several tasks in flight")

    server.restart()

    assert_completed_once(api, ledger, executions)
