"""Dashboard reads: workflow success rates and handler health, aggregated in the database and
limited to what the user may see."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import reference_payloads
from workflows import reports, services
from workflows.models import Execution, TaskAttempt, TaskRun

pytestmark = pytest.mark.django_db


def submitted(owner, name="linear_workflow") -> Execution:
    return services.workflow_submit(payload=reference_payloads.load(name), owner=owner)


def ended(execution: Execution, status: str) -> None:
    Execution.objects.filter(pk=execution.pk).update(status=status, finished_at=timezone.now())


def finish(execution: Execution, node_id: str, status: str, *, seconds: float, ago: timedelta = timedelta()):
    end = timezone.now() - ago
    TaskRun.objects.filter(execution=execution, node_id=node_id).update(
        status=status, started_at=end - timedelta(seconds=seconds), finished_at=end
    )


def test_workflow_summaries_count_runs_and_success_rate(alice, operator):
    first = submitted(alice)
    workflow = first.workflow
    second = services.execution_create(workflow=workflow, owner=alice)
    third = services.execution_create(workflow=workflow, owner=alice)
    ended(first, "COMPLETED")
    ended(second, "FAILED")
    Execution.objects.filter(pk=third.pk).update(status="RUNNING")
    services.execution_create(workflow=workflow, owner=operator)  # not alice's to count
    never_run = submitted(alice, "complex_dag").workflow
    Execution.objects.filter(workflow=never_run).delete()

    summaries = {w.id: w for w in reports.workflow_summaries(alice)}

    row = summaries[workflow.id]
    assert (row.execution_count, row.completed, row.finished, row.running) == (3, 1, 2, 1)
    assert row.success_rate == pytest.approx(0.5)
    assert row.last_run is not None
    assert summaries[never_run.id].success_rate is None and summaries[never_run.id].execution_count == 0
    assert list(summaries) == [never_run.id, workflow.id]  # newest first


def test_staff_see_every_workflow_and_every_run(alice, bob, operator):
    alices, bobs = submitted(alice).workflow, submitted(bob).workflow
    services.execution_create(workflow=alices, owner=operator)

    summaries = {w.id: w for w in reports.workflow_summaries(operator)}

    assert set(summaries) == {alices.id, bobs.id}
    assert summaries[alices.id].execution_count == 2
    assert {w.id for w in reports.workflow_summaries(bob)} == {bobs.id}


def test_handler_health_counts_outcomes_failures_and_mean_run_time(alice, streams, settings):
    settings.RATE_LIMITS = {"call_llm": "5/m"}
    streams.client.hset(
        streams.circuit_key("input"), mapping={"state": "open", "failures": "7", "until": "2000000000"}
    )
    one, two = submitted(alice), submitted(alice)
    finish(one, "start", "COMPLETED", seconds=1)
    finish(two, "start", "COMPLETED", seconds=3)
    finish(one, "process", "FAILED", seconds=1)
    failed = TaskRun.objects.get(execution=one, node_id="process")
    TaskAttempt.objects.create(task_run=failed, attempt=1, error={}, finished_at=timezone.now())
    TaskAttempt.objects.create(task_run=failed, attempt=2, error={}, finished_at=timezone.now())
    finish(two, "process", "COMPLETED", seconds=100, ago=timedelta(days=2))  # outside the window

    health = {h.name: h for h in reports.handler_health(alice, since=timezone.now() - timedelta(hours=24))}

    start_handler = TaskRun.objects.get(execution=one, node_id="start").handler
    process_handler = failed.handler
    assert health[start_handler].completed == 2
    assert health[start_handler].mean_seconds == pytest.approx(2.0)
    assert (health[process_handler].failed_tasks, health[process_handler].failed_attempts) == (1, 2)
    assert health[process_handler].success_rate == 0.0
    assert (health["input"].circuit, health["input"].consecutive_failures) == ("open", 7)
    assert health["input"].circuit_until.timestamp() == 2000000000
    assert health["call_llm"].rate_limit == "5/m" and health["call_llm"].circuit == "closed"
    assert health["delay"].completed == 0 and health["delay"].success_rate is None
    assert all(h.registered for h in health.values())


def test_handler_health_covers_only_the_users_executions_and_unregistered_handlers(alice, bob, streams):
    mine, theirs = submitted(alice), submitted(bob)
    finish(mine, "start", "COMPLETED", seconds=1)
    finish(theirs, "start", "COMPLETED", seconds=1)
    TaskRun.objects.filter(execution=theirs, node_id="process").update(handler="retired_handler")
    finish(theirs, "process", "COMPLETED", seconds=1)
    since = timezone.now() - timedelta(hours=1)
    handler = TaskRun.objects.get(execution=mine, node_id="start").handler

    alices = {h.name: h for h in reports.handler_health(alice, since=since)}
    bobs = {h.name: h for h in reports.handler_health(bob, since=since)}

    assert alices[handler].completed == 1
    assert "retired_handler" not in alices
    assert bobs["retired_handler"].registered is False and bobs["retired_handler"].completed == 1


def test_a_handler_shows_the_worst_of_its_per_host_circuits(alice, streams):
    for host, state, failures in [
        ("a.example", "closed", "1"),
        ("b.example", "open", "5"),
        ("c.example", "half_open", "9"),
    ]:
        streams.client.hset(
            streams.circuit_key(f"call_external_service:{host}"),
            mapping={"state": state, "failures": failures, "until": "2000000000"},
        )

    health = {h.name: h for h in reports.handler_health(alice, since=timezone.now() - timedelta(hours=24))}

    assert (
        health["call_external_service"].circuit,
        health["call_external_service"].consecutive_failures,
    ) == ("open", 5)
    assert health["call_llm"].circuit == "closed"
    assert "call_external_service:b.example" not in health
