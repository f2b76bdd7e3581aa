"""The streams themselves damaged: pending task entries trimmed away, and entries nobody can run
or record written straight onto the task and completion streams. PostgreSQL still knows every
task, so nothing is lost, nothing runs twice, and the runners keep going."""

import json
import signal
import time

import pytest

from tests.faults.dags import node, workflow
from tests.faults.ledger import EFFECT, START
from tests.faults.outcomes import assert_effects_once, completed_within, idempotent_chain, log_events
from tests.polling import poll_until
from workflows.models import TaskRun
from workflows.streams import PARKED_FIELD_MAX_CHARS

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

RECOVERY_SECONDS = 30.0
TEN_MB = 10 * 1024 * 1024


def test_pending_task_entries_trimmed_are_republished_from_postgresql_each_effect_once(
    fleet, api, ledger, streams
):
    """XTRIM MAXLEN 0 while four branches run (their entries pending) and two wait unread, and
    kill -9 one of the two workers. Bounds: the execution completes within 30 s of the trim; the
    branches of the live worker run once, those of the dead one and the unread ones are
    re-published from PostgreSQL and run again, each effect once."""
    fleet.start_engine(workers=2, concurrency=2)
    branches = [f"branch_{i}" for i in range(6)]
    config = {"seconds": 1.5, "idempotent": True}
    execution_id = api.run(
        workflow(
            "trimmed",
            node("root", config={"idempotent": True}),
            *(node(branch, "root", config=config) for branch in branches),
            node("join", *branches, config={"idempotent": True}),
        )
    )

    def four_branches_running() -> list[dict] | None:
        rows = ledger.rows(execution_id, kind=START)
        return rows if len(rows) == 5 else None  # the root's and four branches'

    started = poll_until(four_branches_running, what="four branches to run, two waiting in the stream")
    assert streams.lag()["tasks"] == {"length": 6, "pending": 4}
    victim = fleet.by_pid(started[-1]["pid"])
    killed = {row["node_id"] for row in started if row["pid"] == victim.pid and row["node_id"] != "root"}

    streams.client.xtrim(streams.tasks, maxlen=0, approximate=False)
    fleet.kill(victim, signal.SIGKILL)
    trimmed = time.monotonic()

    completed_within(api, [execution_id], RECOVERY_SECONDS - (time.monotonic() - trimmed))
    assert_effects_once(api, ledger, [execution_id])
    starts = ledger.counts(execution_id, START)
    assert {branch for branch in branches if starts[branch] == 2} == killed, starts
    assert all(starts[branch] == 1 for branch in branches if branch not in killed), starts


def entry(version: str, body) -> dict:
    return {"v": version, "body": body if isinstance(body, str) else json.dumps(body)}


# Entries no reader can decode, on either stream: each is acked, parked on the DLQ stream and
# logged, and names no task it could be charged to.
UNDECODABLE = {
    "garbage fields": {b"v": b"\xff\xfe", b"\xff": b"\x00\xff", "hello": "world"},
    "missing fields": entry("1.0", {"task_id": 1}),
    "bad JSON": entry("1.0", '{"task_id": 1, "execution_id": '),
    "a 10 MB field": entry("1.0", "x" * TEN_MB),
}


def held_task(api, name: str, down) -> TaskRun:
    """A real task that is QUEUED and held by no worker: its first attempt failed, its second
    waits a minute in the delayed set."""
    execution_id = api.run(
        workflow(
            name,
            node(
                "held",
                config={"fail_while_file": str(down)},
                retry={"max_attempts": 3, "backoff_base": 60, "jitter": 0},
            ),
        )
    )
    return poll_until(
        lambda: TaskRun.objects.filter(
            execution_id=execution_id, node_id="held", attempt=2, status=TaskRun.Status.QUEUED
        ).first(),
        what=f"{name}: the second attempt to wait in the delayed set",
    )


def identity(task: TaskRun) -> dict:
    return {
        "task_id": task.id,
        "execution_id": str(task.execution_id),
        "node_id": task.node_id,
        "attempt": task.attempt,
    }


def test_malformed_entries_are_acked_parked_or_dead_lettered_and_the_runners_keep_going(
    fleet, api, operator_api, ledger, streams, tmp_path
):
    """Garbage fields (not UTF-8), missing fields, bad JSON, a 10 MB field and an unknown schema
    version on both streams, and an unknown handler on the task stream. Bounds: within 30 s every
    entry is acked; the two that name a real task end it FAILED with one dead letter each
    (unknown_handler, undecodable_completion), the others are parked on the DLQ stream (each
    field cut to 4 KB) with one log line each; no runner dies or restarts, and a workflow
    submitted afterwards completes, each effect once."""
    down = tmp_path / "downstream-down"
    down.touch()
    fleet.start_engine(workers=2)
    by_task, by_completion = (
        held_task(api, "named by a task", down),
        held_task(api, "named by a completion", down),
    )
    newer = {**identity(by_task), "handler": "fault_effect"}

    for fields in [*UNDECODABLE.values(), entry("9.0", newer), entry("1.0", {**newer, "handler": "no_such"})]:
        streams.client.xadd(streams.tasks, fields)
    completion = {**identity(by_completion), "ok": True, "output": {}}
    for fields in [*UNDECODABLE.values(), entry("9.0", completion)]:
        streams.client.xadd(streams.completions, fields)
    injected = time.monotonic()

    for task, code in ((by_task, "unknown_handler"), (by_completion, "undecodable_completion")):
        final = api.wait_for_end(str(task.execution_id))
        assert final["status"] == "FAILED", final
        [letter] = operator_api.dead_letters(str(task.execution_id))
        assert (letter["node_id"], letter["attempt"], letter["code"]) == ("held", 2, code), letter
    api.wait_until_drained()
    assert time.monotonic() - injected < RECOVERY_SECONDS
    parked = [json.loads(fields[b"body"]) for _, fields in streams.client.xrange(streams.dlq)]
    parked = [event for event in parked if event.get("kind") == "undecodable"]
    assert sorted(event["stream"] for event in parked) == sorted(
        [streams.tasks] * (len(UNDECODABLE) + 1) + [streams.completions] * len(UNDECODABLE)
    ), parked
    assert all(len(value) < PARKED_FIELD_MAX_CHARS + 100 for e in parked for value in e["fields"].values())
    logged = [e.get("event") for runner in fleet.runners for e in log_events(runner.log())]
    assert logged.count("task_undecodable") == len(UNDECODABLE) + 1, logged
    assert logged.count("completion_undecodable") == len(UNDECODABLE) + 1, logged

    after = api.run(idempotent_chain("afterwards", 3, seconds=0.1))
    completed_within(api, [after], RECOVERY_SECONDS)
    assert_effects_once(api, ledger, [after])
    assert ledger.counts(after, EFFECT) == {"step_0": 1, "step_1": 1, "step_2": 1}
    for runner in fleet.runners:
        assert runner.alive() and runner.exits == [], (runner.name, runner.exits)
