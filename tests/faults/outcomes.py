"""What the Redis and stream fault tests read back from the runners and check at the end."""

import json
import os
import time

from tests.faults.api import TERMINAL
from tests.faults.dags import node, workflow
from tests.faults.ledger import EFFECT
from tests.polling import poll_until


def idempotent_chain(name: str, length: int, *, seconds: float) -> dict:
    """step_0 -> step_1 -> ...: each effect made with the task's idempotency key, as a handler
    passing `context.idempotency_key` to the service it calls does."""
    steps = [f"step_{i}" for i in range(length)]
    config = {"seconds": seconds, "idempotent": True}
    return workflow(name, *(node(step, *steps[i - 1 : i], config=config) for i, step in enumerate(steps)))


def completed_within(api, execution_ids: list[str], seconds: float) -> float:
    """Wait until every execution is terminal, at most `seconds`; each must be COMPLETED.
    Returns how long it took (the measured bound)."""
    started = time.monotonic()
    for execution_id in execution_ids:
        remaining = seconds - (time.monotonic() - started)
        final = poll_until(
            lambda e=execution_id: api.check() or _terminal(api, e),
            what=f"execution {execution_id} to end",
            timeout=max(remaining, 0.0),
        )
        assert final["status"] == "COMPLETED", final
    return time.monotonic() - started


def _terminal(api, execution_id: str) -> dict | None:
    status = api.status(execution_id)
    return status if status["status"] in TERMINAL else None


def assert_effects_once(api, ledger, execution_ids: list[str]) -> None:
    """Every node of every execution COMPLETED and did its effect exactly once, after both
    streams drained (a late duplicate would show up by then)."""
    api.wait_until_drained()
    for execution_id in execution_ids:
        nodes = api.status(execution_id)["node_statuses"]
        assert set(nodes.values()) == {"COMPLETED"}, nodes
        ledger.assert_once(execution_id, list(nodes), EFFECT)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (/proc/<pid>/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_events(text: str) -> list[dict]:
    """A runner's JSON log lines as dicts; any other line (a traceback) as {"level": "error"}."""
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        events.append(event if isinstance(event, dict) else {"level": "error", "line": line})
    return events


def warnings(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("level") in {"warning", "error", "critical"}]
