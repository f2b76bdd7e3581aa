"""A transaction holding an execution's row lock (a stuck admin session, a long report): the
orchestrator gives up on that lock after DB_LOCK_TIMEOUT_MS and leaves that execution's
completions for later, other executions keep flowing, and once the lock is released the held
execution completes, each effect once."""

import psycopg
import pytest

from tests.databases import runner_database_url
from tests.faults.dags import chain

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

STEPS = 3


def test_a_held_row_lock_delays_only_its_own_execution(fleet, api, ledger):
    fleet.env["DB_LOCK_TIMEOUT_MS"] = "300"
    fleet.start_engine(workers=1, concurrency=4, orchestrators=1)
    nodes = [f"step_{i}" for i in range(STEPS)]

    with psycopg.connect(runner_database_url()) as blocker:
        held = api.run(chain("held", STEPS))
        blocker.execute("SELECT 1 FROM workflows_execution WHERE id = %s FOR UPDATE", [held])
        free = api.run(chain("free", STEPS))

        assert api.wait_for_end(free)["status"] == "COMPLETED"  # within a few lock timeouts
        stuck = api.status(held)
        assert stuck["status"] == "RUNNING" and stuck["progress"]["completed"] < STEPS
        blocker.rollback()

    assert api.wait_for_end(held)["status"] == "COMPLETED"
    ledger.assert_once(held, nodes)
    ledger.assert_once(free, nodes)
