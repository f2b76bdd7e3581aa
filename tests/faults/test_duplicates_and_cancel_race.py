"""Duplicate deliveries (a task message twice in the stream, a claim moved to another worker, a
reclaim while the holder still runs, an old completion replayed) and a cancel that races
completions: one effect each time, duplicate completions fenced and counted
(workflow_completions_fenced_total), nothing dispatched after the cancel."""

import dataclasses
import time

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.faults.dags import node, workflow
from tests.faults.ledger import EFFECT, REPLAYED, START, STOPPED
from tests.faults.processes import Fleet, Runner
from tests.faults.servers import free_port
from tests.polling import poll_until
from workflows.messages import CompletionMessage, decode_task
from workflows.models import Execution, TaskRun
from workflows.orchestrator import batch_apply
from workflows.streams import WORKERS_GROUP

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

FENCED = "workflow_completions_fenced"


def start_engine_with_metrics(fleet: Fleet, **cast) -> str:
    """The usual cast (`cast` as for start_engine), its one orchestrator serving /metrics;
    returns that URL."""
    port = free_port()
    orchestrator = fleet.start("orchestrator-1", "runorchestrator", "--metrics-port", str(port))
    fleet.start_engine(orchestrators=0, **cast)
    fleet.wait_started([orchestrator])
    return f"http://127.0.0.1:{port}/metrics"


def fenced_by_orchestrator(url: str) -> float:
    """workflow_completions_fenced_total as the orchestrator process serves it."""
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        if family.name == FENCED:
            return sum(s.value for s in family.samples if s.name == f"{FENCED}_total")
    return 0.0


def fenced_here() -> float:
    return REGISTRY.get_sample_value(f"{FENCED}_total") or 0.0


def pending_entries(streams) -> list[dict]:
    """Task entries delivered and not acked: message_id, consumer, ..."""
    return streams.client.xpending_range(streams.tasks, WORKERS_GROUP, "-", "+", 100)


def only_pending_entry(streams) -> dict:
    pending = pending_entries(streams)
    assert len(pending) == 1, pending
    return pending[0]


def test_a_task_added_twice_to_the_stream_runs_once(fleet, api, ledger, streams):
    """The root's task message is in the task stream twice before any worker reads: admission
    (claim, then done marker, atomically in Redis) drops the copy. Bound: the execution ends
    within 10 s of the workers starting; each node starts and does its effect once."""
    fleet.start_engine(workers=0)
    execution_id = api.run(workflow("added twice", node("twice"), node("after", "twice")))
    entries = poll_until(lambda: streams.client.xrange(streams.tasks), what="the root's task entry")
    assert len(entries) == 1, entries
    streams.client.xadd(streams.tasks, entries[0][1])

    fleet.wait_started([fleet.start(f"worker-{i}", "runworker", "--concurrency", "4") for i in (1, 2)])
    started = time.monotonic()
    final = api.wait_for_end(execution_id)
    ended = time.monotonic() - started

    assert final["status"] == "COMPLETED", final
    assert ended < 10.0, f"ended {ended:.1f} s after the workers started"
    for kind in (START, EFFECT):
        ledger.assert_once(execution_id, ["twice", "after"], kind)
    api.wait_until_drained()


def test_a_claim_forced_onto_another_worker_and_a_reclaim_while_the_holder_runs(fleet, api, ledger, streams):
    """1. The pending entry of a running task is XCLAIMed to the other worker: that worker never
    runs it (workers read only new entries), and the holder's heartbeat takes the entry back
    (bound: within one beat, VISIBILITY_TIMEOUT / 3 = 0.67 s, plus 1 s), so the reaper never
    sees it idle; it runs once.
    2. The reaper's verdict (XCLAIM, re-delivery as a new entry) lands while the holder still
    runs it: the other worker runs a second copy at the same time. The effect is done once (the
    idempotency key answers the second call, REPLAYED), the second completion is fenced (the
    orchestrator's workflow_completions_fenced_total is 1) and downstream runs once. Bound: the
    execution ends within 10 s of the re-delivery."""
    metrics = start_engine_with_metrics(fleet, workers=2, concurrency=1)
    slow = {"seconds": 2, "idempotent": True}
    execution_id = api.run(
        workflow(
            "forced claims",
            node("held", config=slow),
            node("stolen", "held", config=slow),
            node("after", "stolen"),
        )
    )

    first = poll_until(lambda: ledger.rows(execution_id, "held", START), what="held to start")
    holder = fleet.by_pid(first[0]["pid"])
    other = other_worker(fleet, holder)
    entry = only_pending_entry(streams)
    assert entry["consumer"].decode() == holder.consumer
    forced = streams.client.xclaim(
        streams.tasks, WORKERS_GROUP, other.consumer, 0, [entry["message_id"]], justid=True
    )
    assert forced == [entry["message_id"]]
    moved = time.monotonic()
    poll_until(
        lambda: only_pending_entry(streams)["consumer"].decode() == holder.consumer,
        what="the holder's heartbeat to take its entry back",
    )
    taken_back = time.monotonic() - moved
    assert taken_back < 2.0 / 3 + 1.0, f"taken back after {taken_back:.2f} s"

    second = poll_until(lambda: ledger.rows(execution_id, "stolen", START), what="stolen to start")
    holder = fleet.by_pid(second[0]["pid"])
    other = other_worker(fleet, holder)
    entry_id = only_pending_entry(streams)["message_id"]
    task = decode_task(streams.client.xrange(streams.tasks, entry_id, entry_id)[0][1])
    wait_for_heartbeat(streams, streams.claim_key(task.task_id, task.attempt))
    streams.redeliver_task(entry_id, dataclasses.replace(task, deliveries=task.deliveries + 1))
    redelivered = time.monotonic()

    final = api.wait_for_end(execution_id)
    ended = time.monotonic() - redelivered
    assert final["status"] == "COMPLETED", final
    assert ended < 10.0, f"ended {ended:.1f} s after the re-delivery"
    starts = ledger.rows(execution_id, "stolen", START)
    assert {row["pid"] for row in starts} == {holder.pid, other.pid}, starts
    # The copy finishes after downstream may have ended the execution.
    poll_until(lambda: ledger.rows(execution_id, "stolen", REPLAYED), what="the copy's call to be answered")
    ledger.assert_once(execution_id, ["stolen"], EFFECT)
    ledger.assert_once(execution_id, ["stolen"], REPLAYED)
    for kind in (START, EFFECT):
        ledger.assert_once(execution_id, ["held", "after"], kind)
    poll_until(lambda: fenced_by_orchestrator(metrics) == 1, what="the second completion to be fenced")
    api.wait_until_drained()
    assert fenced_by_orchestrator(metrics) == 1
    stolen = TaskRun.objects.get(execution_id=execution_id, node_id="stolen")
    assert (stolen.status, stolen.attempt) == (TaskRun.Status.COMPLETED, 1)


def other_worker(fleet: Fleet, worker: Runner) -> Runner:
    return next(other for other in fleet.role("worker") if other is not worker)


def wait_for_heartbeat(streams, claim_key: str) -> None:
    """Return right after the holder extended its claim: its next beat, which would re-create a
    deleted claim, is then a whole beat away, long after another worker admits a copy."""
    last = [streams.client.pttl(claim_key)]

    def extended() -> bool:
        now = streams.client.pttl(claim_key)
        beat, last[0] = now > last[0] + 50, now
        return beat

    poll_until(extended, what="the holder's heartbeat")


def test_an_old_completion_replayed_after_the_execution_moved_on_is_fenced(fleet, api, ledger, streams):
    """A completion of `first`, replayed while `slow` (its child) runs and again after the end:
    on the completions stream (the orchestrator process) and in this process through
    orchestrator.batch_apply on both engine paths. Each replay changes no row, is counted in
    workflow_completions_fenced_total, and runs nothing again (the re-published child is dropped
    at admission: it is running). Bound: each replay is fenced within 5 s."""
    metrics = start_engine_with_metrics(fleet, workers=2)
    execution_id = api.run(
        workflow(
            "replayed", node("first"), node("slow", "first", config={"seconds": 3}), node("last", "slow")
        )
    )
    poll_until(lambda: ledger.rows(execution_id, "slow", START), what="slow to start")
    first = TaskRun.objects.get(execution_id=execution_id, node_id="first")
    recorded = TaskRun.objects.filter(pk=first.pk).values().get()
    old = CompletionMessage(
        task_id=first.pk,
        execution_id=str(execution_id),
        node_id="first",
        attempt=first.attempt,
        ok=True,
        output={"replayed": True},
        worker="replayed",
        workflow_id=str(first.execution.workflow_id),
    )

    def replay_on_the_stream(times_fenced: int) -> None:
        streams.publish_engine_completions([old])
        replayed = time.monotonic()
        poll_until(lambda: fenced_by_orchestrator(metrics) == times_fenced, what="the replay to be fenced")
        assert time.monotonic() - replayed < 5.0

    replay_on_the_stream(1)
    before = fenced_here()
    for completion in (old, dataclasses.replace(old, workflow_id=None)):  # one statement, general path
        dispatch = batch_apply([completion])
        assert dispatch.finished == [] and dispatch.delayed == [], dispatch
        assert {task.node_id for task in dispatch.tasks} <= {"slow"}, dispatch.tasks
    assert fenced_here() == before + 2

    final = api.wait_for_end(execution_id)
    assert final["status"] == "COMPLETED", final
    replay_on_the_stream(2)
    api.wait_until_drained()
    assert TaskRun.objects.filter(pk=first.pk).values().get() == recorded
    assert api.status(execution_id)["status"] == "COMPLETED"
    for kind in (START, EFFECT):
        ledger.assert_once(execution_id, ["first", "slow", "last"], kind)


# Long branches run across the cancel (they must be stopped); the short ones complete in waves,
# each releasing its leaf, so completions arrive while the cancel commits.
LONG_SECONDS = 8.0
SHORT_SECONDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def wide_dag() -> dict:
    long_branches = [node(f"long_{i}", "root", config={"seconds": LONG_SECONDS}) for i in range(4)]
    short_branches = [
        node(f"short_{i:02d}", "root", config={"seconds": SHORT_SECONDS[i % len(SHORT_SECONDS)]})
        for i in range(12)
    ]
    branches = long_branches + short_branches
    leaves = [node(f"leaf_{b['id']}", b["id"], config={"seconds": 0.2}) for b in branches]
    return workflow(
        "cancel race", node("root"), *branches, *leaves, node("join", *(leaf["id"] for leaf in leaves))
    )


def test_cancel_while_completions_arrive_dispatches_nothing_after_it(fleet, api, ledger, streams):
    """Cancel (DELETE /api/v1/workflow/{id}) a wide DAG while short branches complete and
    release their leaves and long branches run. After the cancel: no task is queued (every
    queued_at is before the execution's finished_at), no task is admitted (every node that ever
    started held a claim or had finished when the cancel flag was set), no effect beyond the
    tasks already running, every running long handler is stopped (STOPPED, no effect), every
    task is terminal and unfinished_tasks counts the cancelled ones. Bound: the handlers are
    stopped and both streams drained within 3 s of the cancel."""
    fleet.start_engine(workers=2, concurrency=4)
    execution_id = api.run(wide_dag())
    poll_until(
        lambda: (
            len([r for r in ledger.rows(execution_id, kind=START) if r["node_id"].startswith("leaf_")]) >= 3
        ),
        what="leaves to start (completions flowing)",
    )

    code, body = api.send("DELETE", f"/api/v1/workflow/{execution_id}", None)
    cancelled = time.monotonic()
    assert code == 200 and body["status"] == "CANCELLED", (code, body)
    tasks = list(TaskRun.objects.filter(execution_id=execution_id))
    pipe = streams.client.pipeline(transaction=False)
    for task in tasks:
        pipe.exists(streams.claim_key(task.pk, task.attempt), streams.done_key(task.pk, task.attempt))
    admitted = {task.node_id for task, held in zip(tasks, pipe.execute(), strict=True) if held}
    running_long = {node_id for node_id in admitted if node_id.startswith("long_")}
    assert running_long, f"no long branch was running at the cancel: {sorted(admitted)}"

    poll_until(
        lambda: {r["node_id"] for r in ledger.rows(execution_id, kind=STOPPED)} >= running_long,
        what="the running long handlers to be stopped",
    )
    api.wait_until_drained()
    settled = time.monotonic() - cancelled
    assert settled < 3.0, f"stopped and drained {settled:.2f} s after the cancel"

    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Execution.Status.CANCELLED
    tasks = list(TaskRun.objects.filter(execution_id=execution_id))
    assert {task.status for task in tasks} <= {TaskRun.Status.COMPLETED, TaskRun.Status.CANCELLED}
    late = [task.node_id for task in tasks if task.queued_at and task.queued_at >= execution.finished_at]
    assert late == [], f"queued after the cancel: {late}"
    cancelled_tasks = [task for task in tasks if task.status == TaskRun.Status.CANCELLED]
    assert (execution.total_tasks, execution.unfinished_tasks) == (len(tasks), len(cancelled_tasks))
    started = {row["node_id"] for row in ledger.rows(execution_id, kind=START)}
    assert started <= admitted, f"started after the cancel: {sorted(started - admitted)}"
    effects = ledger.counts(execution_id, EFFECT)
    assert set(effects) <= admitted and set(effects.values()) == {1}, effects
    assert not running_long & set(effects), "a stopped handler did its effect"
    assert "join" not in started
