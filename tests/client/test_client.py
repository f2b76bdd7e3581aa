"""The sync client against a live API and engine: the flows a user writes with it."""

import uuid

import pytest

from orchestrator_client import (
    Client,
    Conflict,
    ExecutionStatus,
    Forbidden,
    NotFound,
    RunAccepted,
    Submitted,
    Unauthorized,
    ValidationFailed,
    WaitTimedOut,
)
from tests.client import dags
from tests.client.conftest import NO_RETRIES
from tests.polling import poll_until

pytestmark = pytest.mark.django_db


def test_submit_trigger_wait_then_read_results_and_tasks(client):
    submitted = client.submit(dags.conditional())
    triggered = client.trigger(submitted.execution_id, params={"data": "yes"})
    seen: list[ExecutionStatus] = []

    final = client.wait(submitted.execution_id, timeout=60, on_progress=seen.append)

    assert isinstance(submitted, Submitted) and triggered.status == "RUNNING"
    assert final.status == "COMPLETED" and final.succeeded and final.finished
    assert final.node_statuses == {
        "start": "COMPLETED",
        "is_yes": "COMPLETED",
        "true_branch": "COMPLETED",
        "false_branch": "SKIPPED",
    }
    assert (final.progress.total, final.progress.done, final.progress.skipped) == (4, 4, 1)
    assert final.finished_at is not None and final.finished_at >= final.started_at
    assert seen[-1] == final
    results = client.results(submitted.execution_id)
    assert results.status == "COMPLETED"
    assert results.outputs["is_yes"]["result"] is True
    assert set(results.outputs) == {"start", "is_yes", "true_branch"}
    tasks = {task.node_id: task for task in client.tasks(submitted.execution_id)}
    assert tasks["start"].output == {"data": "yes"} and tasks["start"].attempt == 1
    assert tasks["false_branch"].status == "SKIPPED"


def test_tasks_are_read_page_after_page(client):
    fan = {
        "name": "wide",
        "dag": {"nodes": [{"id": f"n{i:03}", "handler": "input"} for i in range(205)]},
    }
    submitted = client.submit(fan)
    client.trigger(submitted.execution_id)
    client.wait(submitted.execution_id, timeout=60)

    node_ids = [task.node_id for task in client.tasks(submitted.execution_id)]

    assert node_ids == [f"n{i:03}" for i in range(205)]  # two pages of 200 and 5


def test_a_submit_repeated_with_its_idempotency_key_stores_one_workflow(client):
    key = f"nightly-{uuid.uuid4()}"

    first = client.submit(dags.conditional(), idempotency_key=key)
    again = client.submit(dags.conditional(), idempotency_key=key)

    assert again == first


def test_run_submits_triggers_and_waits_in_one_request(client):
    final = client.run(dags.conditional(), params={"data": "yes"}, wait=30)

    assert isinstance(final, ExecutionStatus) and final.status == "COMPLETED"
    assert final.node_statuses["true_branch"] == "COMPLETED"
    again = client.run(final.workflow_id, params={"data": "no"}, wait=30)  # the stored workflow
    assert again.workflow_id == final.workflow_id and again.execution_id != final.execution_id
    assert again.node_statuses["false_branch"] == "COMPLETED"


def test_run_answers_accepted_when_the_execution_outlasts_the_wait(client):
    accepted = client.run(dags.slow(60), wait=0.5)

    assert isinstance(accepted, RunAccepted) and accepted.status == "RUNNING"
    assert client.status(accepted.execution_id).node_statuses["nap"] in {"QUEUED", "RUNNING"}
    client.cancel(accepted.execution_id)


def test_run_repeated_with_its_idempotency_key_starts_one_execution(client):
    key = f"run-{uuid.uuid4()}"

    first = client.run(dags.slow(60), idempotency_key=key)
    again = client.run(dags.slow(60), idempotency_key=key)

    assert isinstance(first, RunAccepted) and again.execution_id == first.execution_id
    client.cancel(first.execution_id)


def test_wait_gives_up_with_the_last_status_seen(client):
    submitted = client.submit(dags.slow(60))
    client.trigger(submitted.execution_id)

    with pytest.raises(WaitTimedOut) as timed_out:
        client.wait(submitted.execution_id, timeout=1.5, poll_seconds=0.5)

    assert timed_out.value.last.status == "RUNNING"
    client.cancel(submitted.execution_id)


def test_cancel_a_running_execution(client):
    submitted = client.submit(dags.slow(60))
    client.trigger(submitted.execution_id)
    poll_until(
        lambda: client.status(submitted.execution_id).node_statuses["nap"] == "RUNNING",
        what="the delay node to run",
    )

    cancelled = client.cancel(submitted.execution_id)

    assert cancelled.status == "CANCELLED"
    final = client.wait(submitted.execution_id, timeout=30)
    assert final.status == "CANCELLED" and not final.succeeded
    with pytest.raises(Conflict) as again:
        client.cancel(submitted.execution_id)
    assert again.value.status == 409 and again.value.code == "already_finished"


def test_a_failing_node_is_triaged_through_its_dead_letters(client):
    submitted = client.submit(dags.flaky())
    client.trigger(submitted.execution_id)
    assert client.wait(submitted.execution_id, timeout=60).status == "FAILED"

    (letter,) = client.dead_letters(execution=submitted.execution_id, status="OPEN")
    assert (letter.node_id, letter.handler, letter.attempt, letter.status) == ("a", "input", 2, "OPEN")
    assert letter.execution_id == submitted.execution_id and letter.traceback

    retried = client.dead_letter_retry(letter.id, note="upstream fixed")
    assert (retried.status, retried.note, retried.resolved_by) == ("RETRIED", "upstream fixed", "admin")
    # The node fails again: a new letter, which is discarded.
    assert client.wait(submitted.execution_id, timeout=60).status == "FAILED"
    (second,) = client.dead_letters(execution=submitted.execution_id, status="OPEN")
    discarded = client.dead_letter_discard(second.id, note="known failure")

    assert second.id != letter.id and discarded.status == "DISCARDED"
    assert client.dead_letter(letter.id).status == "RETRIED"
    statuses = sorted(each.status for each in client.dead_letters(execution=submitted.execution_id))
    assert statuses == ["DISCARDED", "RETRIED"]


def test_a_cancelled_execution_is_rerun_from_where_it_stopped(client):
    submitted = client.submit(dags.slow(2))
    client.trigger(submitted.execution_id)
    client.cancel(submitted.execution_id)
    assert client.wait(submitted.execution_id, timeout=30).status == "CANCELLED"

    rerun = client.rerun(submitted.execution_id, idempotency_key=f"rerun-{uuid.uuid4()}")
    final = client.wait(submitted.execution_id, timeout=60)

    assert (rerun.execution_id, rerun.status) == (submitted.execution_id, "RUNNING")
    assert final.status == "COMPLETED" and final.node_statuses == {"nap": "COMPLETED"}
    with pytest.raises(Conflict) as again:
        client.rerun(submitted.execution_id)
    assert again.value.status == 409


def test_retrigger_starts_a_new_execution_of_the_workflow_with_new_params(client):
    submitted = client.submit(dags.conditional())
    client.trigger(submitted.execution_id, params={"data": "yes"})
    first = client.wait(submitted.execution_id, timeout=60)

    started = client.retrigger(submitted.execution_id, params={"data": "no"})
    second = client.wait(started.execution_id, timeout=60)

    assert isinstance(started, RunAccepted) and started.workflow_id == submitted.workflow_id
    assert started.execution_id != submitted.execution_id
    assert second.status == "COMPLETED" and second.node_statuses["true_branch"] == "SKIPPED"
    assert client.status(submitted.execution_id) == first  # the old one is left as it was
    assert client.results(started.execution_id).outputs["start"] == {"data": "no"}


def test_an_unknown_execution_is_not_found(client):
    missing = str(uuid.uuid4())

    with pytest.raises(NotFound) as not_found:
        client.status(missing)

    assert not_found.value.status == 404 and not_found.value.code == "not_found"
    assert missing in not_found.value.message


def test_an_invalid_dag_is_refused_with_its_code(client):
    with pytest.raises(ValidationFailed) as invalid:
        client.submit(dags.cyclic())

    assert invalid.value.status == 400 and invalid.value.code == "cycle"
    assert "a" in invalid.value.message and "b" in invalid.value.message


def test_a_bad_token_is_unauthorized(live_api):
    with (
        Client(live_api.url, "not-a-token", retry=NO_RETRIES) as stranger,
        pytest.raises(Unauthorized) as refused,
    ):
        stranger.status(str(uuid.uuid4()))

    assert refused.value.status == 401 and refused.value.code == "authentication_failed"


def test_dead_letters_are_for_operators_only(live_api):
    with Client(live_api.url, live_api.user_token) as user, pytest.raises(Forbidden) as refused:
        list(user.dead_letters())

    assert refused.value.code == "permission_denied" and "dlq.view_deadletter" in refused.value.message


def test_url_and_token_come_from_the_environment(live_api, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_URL", live_api.url + "/api/v1/")
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", live_api.operator_token)

    with Client() as client:
        submitted = client.submit(dags.conditional())

    assert client.connection.api_url == live_api.url + "/api/v1"
    assert uuid.UUID(submitted.execution_id)
