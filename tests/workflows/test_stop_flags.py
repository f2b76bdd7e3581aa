"""Stop flags Redis refuses are not lost: a cancel (or a re-run) commits in PostgreSQL while Redis
is unreachable, the execution stays marked, and the reaper's next sweep once Redis is back sends
the flag (or lifts it), so a cancelled execution's queued task is dropped at admission instead of
running, and a re-run one's tasks run.

Redis is made unreachable by pointing REDIS_URL at a port nothing listens on (as in
test_api_unavailable); a FakeWorker admits tasks over the real streams."""

import pytest
from structlog.testing import capture_logs

from tests.faults.servers import free_port
from tests.redis_clients import forget_redis_clients
from workflows import rerun, services, stop_flags
from workflows.models import Execution
from workflows.reaper import Reaper, ReaperConfig

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

TWO_ROOTS = {
    "name": "stop flags",
    "dag": {"nodes": [{"id": "a", "handler": "input"}, {"id": "b", "handler": "input"}]},
}


@pytest.fixture
def redis_away(settings, streams):
    """Call it to make Redis unreachable; the returned function brings it back."""
    real = settings.REDIS_URL

    def away():
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        forget_redis_clients()

    def back():
        settings.REDIS_URL = real
        forget_redis_clients()

    yield away, back
    back()


def reaper(streams) -> Reaper:
    return Reaper(streams, consumer="reaper-1", config=ReaperConfig())


def stale(execution: Execution) -> bool:
    return Execution.objects.get(pk=execution.pk).stop_flag_stale


def test_a_cancel_redis_refused_is_sent_by_the_reaper_and_the_queued_task_never_runs(
    streams, start_workflow, worker, alice, redis_away
):
    away, back = redis_away
    execution = start_workflow(TWO_ROOTS)
    away()

    with capture_logs() as logs:
        services.execution_cancel(execution=execution, user=alice)

    assert Execution.objects.get(pk=execution.pk).status == Execution.Status.CANCELLED
    warned = [(e["event"], e.get("what")) for e in logs if e["log_level"] == "warning"]
    assert warned == [("outage", "sync_stop_flags"), ("stop_flag_deferred", None)], warned
    assert stale(execution)
    back()
    assert streams.cancelled_executions([str(execution.pk)]) == set()

    assert reaper(streams).sync_stop_flags() == 1

    assert streams.cancelled_executions([str(execution.pk)]) == {str(execution.pk)}
    assert streams.wait_finished(str(execution.pk), 0.01), "long polls are woken too"
    assert not stale(execution)
    assert worker.take() == {}, "both roots were still in the stream: dropped at admission, not run"
    assert reaper(streams).sync_stop_flags() == 0


def test_a_re_run_whose_lift_redis_refused_gets_its_flag_lifted_by_the_reaper(
    streams, start_workflow, worker, alice, redis_away
):
    away, back = redis_away
    execution = start_workflow(TWO_ROOTS)
    services.execution_cancel(execution=execution, user=alice)
    assert streams.cancelled_executions([str(execution.pk)]) == {str(execution.pk)}
    assert not stale(execution), "sent at once while Redis takes writes"
    assert worker.take() == {}
    away()

    rerun.execution_rerun(execution=Execution.objects.get(pk=execution.pk), user=alice)

    assert Execution.objects.get(pk=execution.pk).status == Execution.Status.RUNNING
    assert stale(execution)
    back()
    assert reaper(streams).sync_stop_flags() == 1
    assert streams.cancelled_executions([str(execution.pk)]) == set()
    assert reaper(streams).republish_lost(everything=True) == 2  # the re-run's publish was refused too
    assert sorted(worker.take()) == ["a", "b"], "the re-run's tasks are admitted"


def test_a_sync_follows_the_status_whichever_writer_marked_it(streams, start_workflow, alice):
    """A flag change that arrives late cannot contradict the status: sync decides from the row it
    locked, so a stop's late send after a re-run lifts the flag instead of setting it."""
    execution = start_workflow(TWO_ROOTS)
    streams.sync_stop_flags(ended=[str(execution.pk)])  # a stop's flag, landing after the re-run
    Execution.objects.filter(pk=execution.pk).update(stop_flag_stale=True)

    assert stop_flags.sync([execution.pk]) == 1

    assert streams.cancelled_executions([str(execution.pk)]) == set()
    assert not stale(execution)


def test_a_failure_the_orchestrator_records_is_marked_so_a_lost_publish_is_made_good(
    streams, start_workflow, worker, orchestrate
):
    """The orchestrator sends a failed execution's stop flag with its dispatch after commit; if it
    dies in between, the reaper sends it from the mark."""
    execution = start_workflow(TWO_ROOTS)
    worker.fail(worker.take()["a"], permanent=True)
    orchestrate()
    assert Execution.objects.get(pk=execution.pk).status == Execution.Status.FAILED
    streams.sync_stop_flags(live=[str(execution.pk)])  # as if that publish never happened
    assert stale(execution)

    assert reaper(streams).sync_stop_flags() == 1

    assert streams.cancelled_executions([str(execution.pk)]) == {str(execution.pk)}
    assert not stale(execution)
