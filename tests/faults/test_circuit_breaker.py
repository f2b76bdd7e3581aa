"""A downstream that keeps failing opens its handler's circuit: calls stop while it is open, one
probe goes through after the reset timeout (half-open), and a successful probe closes it."""

from datetime import UTC, datetime

import pytest

from tests.faults.dags import node, workflow
from tests.faults.ledger import START
from tests.polling import poll_until
from workflows.streams import get_streams

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

THRESHOLD = 3
RESET_SECONDS = 2
PROBE_SECONDS = 0.5  # a successful call takes this long, so the half-open state can be seen


def test_circuit_opens_stops_calls_half_opens_and_closes(fleet, api, ledger, tmp_path, stream_prefix):
    downstream_down = tmp_path / "downstream-down"
    downstream_down.touch()
    fleet.env.update(CIRCUIT_FAILURE_THRESHOLD=str(THRESHOLD), CIRCUIT_RESET_SECONDS=str(RESET_SECONDS))
    fleet.start_engine(workers=1)
    execution_id = api.run(
        workflow(
            "failing downstream",
            node(
                "call",
                config={"fail_while_file": str(downstream_down), "seconds": PROBE_SECONDS},
                retry={"max_attempts": 20, "backoff_base": 0.1, "backoff_max": 0.2, "jitter": 0},
            ),
        )
    )
    streams = get_streams()
    assert streams.prefix == stream_prefix

    def circuit_in(state: str) -> dict | None:
        circuit = streams.circuits().get("fault_effect")
        return circuit if circuit and circuit["state"] == state else None

    opened = poll_until(lambda: circuit_in("open"), what="the circuit to open")
    downstream_down.unlink()  # the downstream recovers; only the breaker holds calls back now
    poll_until(lambda: circuit_in("half_open"), what="the circuit to half-open (the probe)")
    poll_until(lambda: circuit_in("closed"), what="the successful probe to close the circuit")

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    calls = [row["recorded_at"] for row in ledger.rows(execution_id, "call", START)]
    opened_at = datetime.fromtimestamp(float(opened["opened_at"]), tz=UTC)
    reopens_at = datetime.fromtimestamp(float(opened["until"]), tz=UTC)
    assert len([at for at in calls if at <= opened_at]) == THRESHOLD, calls
    assert not [at for at in calls if opened_at < at < reopens_at], f"calls while open: {calls}"
    assert len(calls) == THRESHOLD + 1, f"{THRESHOLD} failures, then one successful probe: {calls}"
    ledger.assert_once(execution_id, ["call"])
    assert api.tasks(execution_id)["call"]["attempt"] == THRESHOLD + 1
