"""A handler that keeps failing: retried with growing delays, then one dead letter; once the
condition is fixed, a retry from the DLQ resumes the execution to completion."""

from itertools import pairwise

import pytest

from dlq.models import DeadLetter
from tests.faults.dags import node, workflow
from workflows.models import TaskAttempt

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.3


def test_failing_handler_retries_with_backoff_then_dead_letters_then_retries_from_dlq(
    fleet, api, operator_api, ledger, tmp_path
):
    downstream_down = tmp_path / "downstream-down"
    downstream_down.touch()
    fleet.env["CIRCUIT_FAILURE_THRESHOLD"] = "100"  # this test is about retries, not the breaker
    fleet.start_engine(workers=1)
    execution_id = api.run(
        workflow(
            "flaky call",
            node("start"),
            node(
                "flaky",
                "start",
                config={"fail_while_file": str(downstream_down)},
                retry={"max_attempts": MAX_ATTEMPTS, "backoff_base": BACKOFF_BASE, "jitter": 0},
            ),
            node("after", "flaky"),
        )
    )

    failed = api.wait_for_end(execution_id)
    assert failed["status"] == "FAILED", failed
    assert failed["node_statuses"] == {"start": "COMPLETED", "flaky": "FAILED", "after": "CANCELLED"}
    attempts = list(
        TaskAttempt.objects.filter(task_run__execution_id=execution_id, task_run__node_id="flaky").order_by(
            "attempt"
        )
    )
    assert [a.attempt for a in attempts] == list(range(1, MAX_ATTEMPTS + 1))
    assert {(a.error["category"], a.error["code"]) for a in attempts} == {("handler", "downstream_down")}
    gaps = [(later.started_at - earlier.finished_at).total_seconds() for earlier, later in pairwise(attempts)]
    # Each wait is at least its backoff, base * 2**(n-1), so the waits double (jitter is off).
    for n, gap in enumerate(gaps, start=1):
        assert gap >= BACKOFF_BASE * 2 ** (n - 1) - 0.01, f"wait after attempt {n}: {gaps}"
    assert gaps[-1] > gaps[0], gaps

    letters = operator_api.dead_letters(execution_id)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert (letter["node_id"], letter["status"], letter["attempt"]) == ("flaky", "OPEN", MAX_ATTEMPTS)
    assert letter["category"] == "handler"
    assert letter["code"] == "downstream_down"

    downstream_down.unlink()
    retried = operator_api.retry_dead_letter(letter["id"])
    assert retried["status"] == "RETRIED"
    assert retried["resolved_by"] == "olga"

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    flaky = api.tasks(execution_id)["flaky"]
    assert flaky["status"] == "COMPLETED"
    assert flaky["attempt"] == MAX_ATTEMPTS + 1
    ledger.assert_once(execution_id, ["start", "flaky", "after"])
    assert len(ledger.rows(execution_id, "flaky", "start")) == MAX_ATTEMPTS + 1
    assert DeadLetter.objects.filter(execution_id=execution_id).count() == 1
