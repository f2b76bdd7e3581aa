"""Re-run from failure and re-trigger with new params (workflows/rerun.py), through the services,
the API and the admin.

Executions are submitted and triggered through the services; a FakeWorker reads and reports
tasks over the real streams; `orchestrate` applies completions like a runorchestrator process.
"""

import threading
import time

import pytest
from django.db import connection

from dlq.models import DeadLetter
from workflows import services
from workflows.messages import decode_task
from workflows.models import Execution, TaskAttempt, TaskRun
from workflows.rerun import execution_rerun, execution_retrigger
from workflows.services import Conflict, ServiceError
from workflows.triage import dead_letter_retry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

# b fails for good; c never gets to run.
CHAIN = {
    "name": "chain",
    "dag": {
        "nodes": [
            {"id": "a", "handler": "input", "config": {"x": 1}},
            {"id": "b", "handler": "output", "dependencies": ["a"], "config": {"got": "{{ a.x }}"}},
            {"id": "c", "handler": "output", "dependencies": ["b"]},
        ]
    },
}

# `skip` is skipped by its condition, `work` fails while `side` is in flight; `join` waits for
# all three and `tail` for `join`.
DIAMOND = {
    "name": "diamond",
    "dag": {
        "nodes": [
            {"id": "root", "handler": "input", "config": {"go": True}},
            {
                "id": "skip",
                "handler": "output",
                "dependencies": ["root"],
                "condition": "{{ root.go }} == false",
            },
            {"id": "work", "handler": "output", "dependencies": ["root"]},
            {"id": "side", "handler": "output", "dependencies": ["root"]},
            {"id": "join", "handler": "output", "dependencies": ["skip", "work", "side"]},
            {"id": "tail", "handler": "output", "dependencies": ["join"]},
        ]
    },
}


@pytest.fixture(autouse=True)
def retry_policy(settings):
    """Three attempts, 10 s apart at first, no jitter."""
    settings.RETRY_MAX_ATTEMPTS = 3
    settings.RETRY_BACKOFF_BASE = 10.0
    settings.RETRY_BACKOFF_MAX = 60.0
    settings.RETRY_JITTER = 0.0


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def tasks(execution: Execution) -> dict[str, TaskRun]:
    return {t.node_id: t for t in TaskRun.objects.filter(execution=execution)}


def statuses(execution: Execution) -> dict[str, str]:
    return {node_id: t.status for node_id, t in tasks(execution).items()}


def published(streams) -> dict[str, int]:
    """Node id -> attempt of every task message waiting in the task stream."""
    return {
        t.node_id: t.attempt
        for t in (decode_task(fields) for _, fields in streams.client.xrange(streams.tasks))
    }


def make_due(streams) -> int:
    for member in streams.client.zrange(streams.delayed, 0, -1):
        streams.client.zadd(streams.delayed, {member: time.time() - 1})
    return streams.move_due_delayed()


def failed_chain(streams, start_workflow, worker, orchestrate) -> Execution:
    """CHAIN with `a` done and `b` failed twice (a retry, then a permanent error): FAILED."""
    execution = start_workflow(CHAIN)
    worker.succeed(worker.take()["a"], {"x": 1})
    orchestrate()
    worker.fail(worker.take()["b"])
    orchestrate()
    make_due(streams)
    worker.fail(worker.take()["b"], permanent=True, code="bad_input")
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert statuses(execution) == {"a": "COMPLETED", "b": "FAILED", "c": "CANCELLED"}
    return execution


def run_to_the_end(worker, orchestrate, streams) -> None:
    """Succeed every task published until nothing is left."""
    for _ in range(20):
        entries = worker.take()
        if not entries:
            return
        for entry in entries.values():
            worker.succeed(entry)
        orchestrate()
    raise AssertionError("tasks kept coming")


# --- re-run from failure ---------------------------------------------------------------------


def test_rerun_runs_the_failed_node_and_its_descendants_and_keeps_completed_ones(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)
    a_before = tasks(execution)["a"]
    letter = DeadLetter.objects.get(execution=execution)
    before = time.time()

    returned = execution_rerun(execution=execution, user=operator)

    assert returned.status == Execution.Status.RUNNING
    execution.refresh_from_db()
    assert (execution.status, execution.finished_at, execution.error) == (
        Execution.Status.RUNNING,
        None,
        None,
    )
    assert execution.unfinished_tasks == 2
    runs = tasks(execution)
    assert (runs["a"].status, runs["a"].attempt, runs["a"].output) == ("COMPLETED", 1, {"x": 1})
    assert runs["a"].finished_at == a_before.finished_at
    assert (runs["b"].status, runs["b"].attempt, runs["b"].retry_base) == ("QUEUED", 3, 2)
    assert runs["b"].config == {"got": 1}
    assert (runs["c"].status, runs["c"].attempt, runs["c"].pending_dependencies) == ("PENDING", 0, 1)
    assert published(streams) == {"b": 3}  # `a` is not run again
    letter.refresh_from_db()
    assert (letter.status, letter.resolved_by, letter.note) == ("RETRIED", operator, "re-run from failure")
    assert letter.resolved_at.timestamp() >= before - 1

    # A fresh budget: attempt 3 is the first of three again, so its failure is retried.
    worker.fail(worker.take()["b"])
    orchestrate()
    assert (tasks(execution)["b"].status, tasks(execution)["b"].attempt) == ("QUEUED", 4)
    make_due(streams)
    run_to_the_end(worker, orchestrate, streams)

    execution.refresh_from_db()
    assert (execution.status, execution.unfinished_tasks) == (Execution.Status.COMPLETED, 0)
    runs = tasks(execution)
    assert runs["a"].attempt == 1
    assert runs["c"].status == "COMPLETED"
    assert list(TaskAttempt.objects.filter(task_run=runs["b"]).values_list("attempt", flat=True)) == [1, 2, 3]
    assert DeadLetter.objects.filter(execution=execution).count() == 1


def test_rerun_sets_a_fresh_deadline(streams, start_workflow, worker, orchestrate, operator):
    execution = start_workflow({**CHAIN, "timeout_seconds": 600})
    worker.fail(worker.take()["a"], permanent=True)
    orchestrate()
    before = time.time()

    execution_rerun(execution=execution, user=operator)

    execution.refresh_from_db()
    assert execution.deadline.timestamp() == pytest.approx(before + 600, abs=5)


def test_rerun_counts_right_on_a_diamond_with_a_skipped_branch(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = start_workflow(DIAMOND)
    worker.succeed(worker.take()["root"], {"go": True})
    orchestrate()
    entries = worker.take()
    assert set(entries) == {"work", "side"}
    worker.fail(entries["work"], permanent=True)
    orchestrate()
    assert statuses(execution) == {
        "root": "COMPLETED",
        "skip": "SKIPPED",
        "work": "FAILED",
        "side": "CANCELLED",
        "join": "CANCELLED",
        "tail": "CANCELLED",
    }
    streams.client.xtrim(streams.tasks, maxlen=0)  # `side`'s first attempt, stopped

    execution_rerun(execution=execution, user=operator)

    execution.refresh_from_db()
    assert execution.unfinished_tasks == 4  # work, side, join, tail
    runs = tasks(execution)
    assert {n: (t.status, t.pending_dependencies) for n, t in runs.items()} == {
        "root": ("COMPLETED", 0),
        "skip": ("SKIPPED", 0),
        "work": ("QUEUED", 0),
        "side": ("QUEUED", 0),
        "join": ("PENDING", 2),  # `skip` counted already
        "tail": ("PENDING", 1),
    }
    assert published(streams) == {"work": 2, "side": 2}

    entries = worker.take()
    worker.succeed(entries["work"])
    orchestrate()
    assert tasks(execution)["join"].status == "PENDING"  # still waits for `side`
    worker.succeed(entries["side"])
    orchestrate()
    run_to_the_end(worker, orchestrate, streams)

    execution.refresh_from_db()
    assert (execution.status, execution.unfinished_tasks) == (Execution.Status.COMPLETED, 0)
    assert statuses(execution)["skip"] == "SKIPPED"
    assert tasks(execution)["root"].attempt == 1


@pytest.mark.parametrize("stop", ["cancel", "time_out"])
def test_rerun_of_a_stopped_execution_reruns_its_running_delay_node(
    stop, streams, start_workflow, worker, orchestrate, operator
):
    execution = start_workflow(
        {
            "name": "sleepy",
            "dag": {
                "nodes": [
                    {"id": "a", "handler": "input"},
                    {"id": "nap", "handler": "delay", "dependencies": ["a"], "config": {"seconds": 600}},
                    {"id": "c", "handler": "output", "dependencies": ["nap"]},
                ]
            },
        }
    )
    worker.succeed(worker.take()["a"])
    orchestrate()
    old = worker.take()["nap"]  # claimed: running on a worker
    if stop == "cancel":
        services.execution_cancel(execution=execution, user=execution.owner)
    else:
        assert services.execution_time_out(execution_id=execution.id)
    assert statuses(execution) == {"a": "COMPLETED", "nap": "CANCELLED", "c": "CANCELLED"}
    assert streams.cancelled_executions([str(execution.id)]) == {str(execution.id)}
    assert streams.wait_finished(str(execution.id), 0.01)

    execution_rerun(execution=execution, user=operator)

    execution.refresh_from_db()
    assert (execution.status, execution.error, execution.unfinished_tasks) == ("RUNNING", None, 2)
    nap = tasks(execution)["nap"]
    assert (nap.status, nap.attempt, nap.retry_base) == ("QUEUED", 2, 1)
    # The stop is lifted and waiters wait for the new end.
    assert streams.cancelled_executions([str(execution.id)]) == set()
    assert not streams.wait_finished(str(execution.id), 0.01)

    worker.succeed(old)  # the first attempt, still running when it was stopped, reports late
    orchestrate()
    assert (tasks(execution)["nap"].status, tasks(execution)["nap"].attempt) == ("QUEUED", 2)

    entries = worker.take()
    assert {n: e.message.attempt for n, e in entries.items()} == {"nap": 2}
    worker.succeed(entries["nap"])
    orchestrate()
    run_to_the_end(worker, orchestrate, streams)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert streams.wait_finished(str(execution.id), 0.01)


def test_an_execution_can_be_rerun_again_after_failing_again(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)
    execution_rerun(execution=execution, user=operator)
    worker.fail(worker.take()["b"], permanent=True)
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert DeadLetter.objects.filter(execution=execution, status="OPEN").count() == 1

    execution_rerun(execution=execution, user=operator)

    assert published(streams) == {"b": 4}
    assert not DeadLetter.objects.filter(execution=execution, status="OPEN").exists()


def test_rerun_closes_every_open_dead_letter_of_the_execution(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = start_workflow(DIAMOND)
    worker.succeed(worker.take()["root"], {"go": True})
    orchestrate()
    entries = worker.take()
    worker.fail(entries["work"], permanent=True)
    worker.fail(entries["side"], permanent=True)
    orchestrate()
    assert DeadLetter.objects.filter(execution=execution, status="OPEN").count() == 2

    execution_rerun(execution=execution, user=operator)

    assert set(DeadLetter.objects.filter(execution=execution).values_list("status", flat=True)) == {"RETRIED"}
    assert published(streams) == {"work": 2, "side": 2}
    with pytest.raises(Conflict, match="already RETRIED"):
        dead_letter_retry(
            dead_letter_id=DeadLetter.objects.filter(execution=execution).first().pk, user=operator
        )


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETED"])
def test_rerun_refuses_an_execution_that_has_not_ended_short(
    state, streams, start_workflow, worker, orchestrate, operator, alice
):
    if state == "PENDING":
        execution = services.workflow_submit(payload=CHAIN, owner=alice)
    else:
        execution = start_workflow(CHAIN)
        if state == "COMPLETED":
            run_to_the_end(worker, orchestrate, streams)
    execution.refresh_from_db()
    assert execution.status == state
    before = statuses(execution)

    with pytest.raises(Conflict) as raised:
        execution_rerun(execution=execution, user=operator)

    assert raised.value.code == "not_rerunnable"
    assert f"execution is {state}" in raised.value.message
    assert statuses(execution) == before


def test_rerun_refuses_an_execution_cancelled_before_it_started(streams, alice, operator):
    execution = services.workflow_submit(payload=CHAIN, owner=alice)
    services.execution_cancel(execution=execution, user=execution.owner)

    with pytest.raises(Conflict) as raised:
        execution_rerun(execution=execution, user=operator)

    assert raised.value.code == "never_started"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_a_dlq_retry_after_a_rerun_and_a_rerun_after_a_dlq_retry_are_refused(
    streams, start_workflow, worker, orchestrate, operator
):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)
    letter = DeadLetter.objects.get(execution=execution)
    dead_letter_retry(dead_letter_id=letter.pk, user=operator)

    with pytest.raises(Conflict) as raised:
        execution_rerun(execution=execution, user=operator)

    assert raised.value.code == "not_rerunnable"
    assert published(streams) == {"b": 3}


def test_concurrent_reruns_resume_the_execution_once(streams, start_workflow, worker, orchestrate, operator):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def rerun_once() -> None:
        try:
            barrier.wait()
            execution_rerun(execution=Execution.objects.get(pk=execution.pk), user=operator)
            outcomes.append("rerun")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=rerun_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["not_rerunnable", "rerun"]
    assert published(streams) == {"b": 3}
    assert tasks(execution)["b"].attempt == 3


# --- re-trigger with new params --------------------------------------------------------------


def test_retrigger_starts_a_new_execution_with_new_params_and_leaves_the_old_one(
    streams, start_workflow, worker, orchestrate, alice, operator
):
    old = failed_chain(streams, start_workflow, worker, orchestrate)
    old_state = (old.status, old.params, statuses(old))
    streams.client.xtrim(streams.tasks, maxlen=0)

    new = execution_retrigger(execution=old, params={"mode": "fixed"}, owner=operator)

    assert new.pk != old.pk
    new.refresh_from_db()
    assert (new.workflow_id, new.owner, new.status, new.params) == (
        old.workflow_id,
        operator,
        "RUNNING",
        {"mode": "fixed"},
    )
    assert statuses(new) == {"a": "QUEUED", "b": "PENDING", "c": "PENDING"}
    [message] = [decode_task(f) for _, f in streams.client.xrange(streams.tasks)]
    assert (message.execution_id, message.node_id, message.params) == (str(new.pk), "a", {"mode": "fixed"})
    old.refresh_from_db()
    assert (old.status, old.params, statuses(old)) == old_state


@pytest.mark.parametrize("params", [["not", "an", "object"], {"bad": "nul\x00"}])
def test_retrigger_refuses_bad_params_and_creates_nothing(params, streams, start_workflow, alice):
    old = start_workflow(CHAIN)

    with pytest.raises(ServiceError):
        execution_retrigger(execution=old, params=params, owner=alice)

    assert Execution.objects.count() == 1


def test_a_start_the_trigger_refuses_leaves_no_pending_execution(streams, start_workflow, alice, monkeypatch):
    old = start_workflow(CHAIN)

    def refuse(**kwargs):
        raise ServiceError("refused after the execution was created")

    monkeypatch.setattr(services, "execution_trigger", refuse)
    with pytest.raises(ServiceError):
        services.workflow_start(workflow=old.workflow, params={}, owner=alice)

    assert Execution.objects.count() == 1


# --- API -------------------------------------------------------------------------------------


def test_api_rerun_answers_202_and_resumes(streams, start_workflow, worker, orchestrate, alice, alice_client):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)

    response = alice_client.post(f"/api/v1/workflow/{execution.pk}/rerun")

    assert response.status_code == 202, response.content
    assert response.json() == {
        "execution_id": str(execution.pk),
        "status": "RUNNING",
        "message": "Execution re-run from failure.",
    }
    assert DeadLetter.objects.get(execution=execution).resolved_by == alice
    assert published(streams) == {"b": 3}


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETED"])
def test_api_rerun_is_a_409_unless_the_execution_ended_short(
    state, streams, start_workflow, worker, orchestrate, alice, alice_client
):
    if state == "PENDING":
        execution = services.workflow_submit(payload=CHAIN, owner=alice)
    else:
        execution = start_workflow(CHAIN)
        if state == "COMPLETED":
            run_to_the_end(worker, orchestrate, streams)

    response = alice_client.post(f"/api/v1/workflow/{execution.pk}/rerun")

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "not_rerunnable"
    assert error["message"].startswith(f"execution is {state}; only a FAILED, TIMED_OUT or CANCELLED")


@pytest.mark.parametrize("verb", ["rerun", "retrigger"])
def test_api_rerun_and_retrigger_of_another_users_execution_is_a_404(
    verb, streams, start_workflow, worker, orchestrate, bob_client
):
    execution = failed_chain(streams, start_workflow, worker, orchestrate)

    response = bob_client.post(f"/api/v1/workflow/{execution.pk}/{verb}", {}, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert Execution.objects.count() == 1


@pytest.mark.parametrize("verb", ["rerun", "retrigger"])
def test_api_rerun_and_retrigger_of_an_unknown_id_is_a_404(verb, streams, alice_client):
    assert alice_client.post(f"/api/v1/workflow/not-a-uuid/{verb}").status_code == 404


def test_api_retrigger_answers_202_with_the_new_execution(
    streams, start_workflow, worker, orchestrate, alice_client
):
    old = failed_chain(streams, start_workflow, worker, orchestrate)

    response = alice_client.post(f"/api/v1/workflow/{old.pk}/retrigger", {"params": {"n": 2}}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    new = Execution.objects.get(pk=body["execution_id"])
    assert body == {
        "execution_id": str(new.pk),
        "workflow_id": str(old.workflow_id),
        "status": "RUNNING",
        "message": f"New execution of the workflow started (re-triggered from {old.pk}).",
    }
    assert new.params == {"n": 2}
    old.refresh_from_db()
    assert old.status == Execution.Status.FAILED


def test_api_retrigger_without_a_body_uses_empty_params(streams, start_workflow, alice_client):
    old = start_workflow(CHAIN, params={"n": 1})

    response = alice_client.post(f"/api/v1/workflow/{old.pk}/retrigger")

    assert response.status_code == 202, response.content
    assert Execution.objects.get(pk=response.json()["execution_id"]).params == {}


def test_api_retrigger_with_params_that_are_not_an_object_is_a_400(streams, start_workflow, alice_client):
    old = start_workflow(CHAIN)

    response = alice_client.post(f"/api/v1/workflow/{old.pk}/retrigger", {"params": [1, 2]}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert Execution.objects.count() == 1


# --- admin -----------------------------------------------------------------------------------


def test_admin_action_reruns_the_failed_and_reports_the_refused(
    streams, start_workflow, worker, orchestrate, admin_client, admin_user
):
    failed = failed_chain(streams, start_workflow, worker, orchestrate)
    running = start_workflow(CHAIN)

    response = admin_client.post(
        "/admin/workflows/execution/",
        {"action": "rerun_selected", "_selected_action": [str(failed.pk), str(running.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert "1 execution(s) re-run." in shown
    assert (
        f"1 not re-run: #{running.pk}: execution is RUNNING; only a FAILED, TIMED_OUT or CANCELLED"
        in shown[1]
    )
    failed.refresh_from_db()
    assert failed.status == Execution.Status.RUNNING
    assert DeadLetter.objects.get(execution=failed).resolved_by == admin_user


def test_a_rerun_that_fails_again_at_once_ends_the_execution_and_says_so(
    streams, start_workflow, worker, orchestrate, operator
):
    """A strict template that cannot resolve fails its node before dispatch, on every run."""
    execution = start_workflow(
        {
            "name": "strict",
            "strict_templates": True,
            "dag": {
                "nodes": [
                    {"id": "a", "handler": "input"},
                    {
                        "id": "b",
                        "handler": "output",
                        "dependencies": ["a"],
                        "config": {"v": "{{ a.missing }}"},
                    },
                ]
            },
        }
    )
    worker.succeed(worker.take()["a"])
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED

    execution_rerun(execution=execution, user=operator)

    execution.refresh_from_db()
    assert (execution.status, execution.error["node_id"]) == (Execution.Status.FAILED, "b")
    assert list(DeadLetter.objects.filter(execution=execution).values_list("status", flat=True)) == [
        "OPEN",
        "RETRIED",
    ]
    assert published(streams) == {}
    assert streams.wait_finished(str(execution.id), 0.01)  # waiters learn of the new end
    assert streams.cancelled_executions([str(execution.id)]) == {str(execution.id)}
