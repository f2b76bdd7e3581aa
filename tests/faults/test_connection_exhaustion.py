"""PostgreSQL out of connections (a cluster of the test's own, every slot held by another
client): the API answers 503 database_unavailable, never a 500; a runner that (re)starts
meanwhile backs off instead of crash-looping; once the connections are freed everything flows
again, each effect once."""

import signal
import time

import psycopg
import pytest

from tests.faults.api import EngineApi, over_http
from tests.faults.dags import chain
from tests.faults.processes import prepare_database

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

MAX_CONNECTIONS = 25


def hold_every_connection(url: str) -> list[psycopg.Connection]:
    """Open connections until the server refuses one: every slot is then taken."""
    held = []
    while True:
        try:
            held.append(psycopg.connect(url, connect_timeout=5))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc) or "remaining connection slots" in str(exc), exc
            return held


def test_connections_exhausted_api_answers_503_and_runners_recover(
    throwaway_postgres, fleet, ledger, tmp_path
):
    with psycopg.connect(throwaway_postgres.url("postgres"), autocommit=True) as admin:
        admin.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
    throwaway_postgres.restart()
    # The API opens a connection per request, as behind a pooler: it needs a free slot each time.
    fleet.env.update(DATABASE_URL=throwaway_postgres.url("orchestrator"), VAR_DIR=str(tmp_path / "var"))
    token = prepare_database(fleet.env)
    server, base_url = fleet.start_api(workers=1, env={"DB_CONN_MAX_AGE": "0"})
    fleet.start_engine(workers=1, orchestrators=1)
    fleet.wait_started([server])
    send = over_http(base_url, token)
    api = EngineApi(send, check=fleet.check_unsupervised_alive)
    before = api.run(chain("before", 2))
    assert api.wait_for_end(before)["status"] == "COMPLETED"

    held = hold_every_connection(throwaway_postgres.url("postgres"))
    status, body = send("POST", "/api/v1/workflow", chain("refused", 2))
    assert (status, body["error"]["code"]) == (503, "database_unavailable"), body
    orchestrator = fleet.role("orchestrator")[0]
    fleet.kill_and_wait_respawned(orchestrator)  # it starts again with no slot to connect with
    time.sleep(2)
    assert orchestrator.alive() and orchestrator.exits == [-signal.SIGKILL]  # backing off, not crash-looping
    for connection in held:
        connection.close()

    after = api.run(chain("after", 2))
    assert api.wait_for_end(after)["status"] == "COMPLETED"
    ledger.assert_once(before, ["step_0", "step_1"])
    ledger.assert_once(after, ["step_0", "step_1"])
