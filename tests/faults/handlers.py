"""Test-only handlers, loaded by the runners through HANDLER_MODULES=tests.faults.handlers.

Each one writes to the effects ledger (tests/faults/ledger.py) so a test can count how often a
node started and how often its side effect really happened.
"""

import os
import signal
from pathlib import Path

from tests.faults import ledger
from workflows.handlers import HandlerError, Interrupted, TaskContext, handler


def _record(context: TaskContext, kind: str, idempotency_key: str | None = None) -> None:
    ledger.record(
        execution_id=context.execution_id,
        node_id=context.node_id,
        attempt=context.attempt,
        kind=kind,
        idempotency_key=idempotency_key,
    )


@handler("fault_effect")
def fault_effect(config: dict, context: TaskContext) -> dict:
    """A call with a side effect: records its start, fails while `fail_while_file` exists,
    sleeps `seconds` (when the worker stops it, records that and ends), then records its effect;
    with `idempotent`, the effect goes with the task's idempotency key, so it is done once per
    node however often the node runs."""
    _record(context, ledger.START)
    condition = config.get("fail_while_file")
    if condition and Path(condition).exists():
        raise HandlerError(f"downstream unavailable while {condition} exists", code="downstream_down")
    try:
        context.sleep(float(config.get("seconds", 0)))
    except Interrupted:
        _record(context, ledger.STOPPED)
        raise
    _record(context, ledger.EFFECT, context.idempotency_key if config.get("idempotent") else None)
    return {"pid": os.getpid(), "attempt": context.attempt}


@handler("fault_crash")
def fault_crash(config: dict, context: TaskContext) -> dict:
    """A poison task: kills its own worker process, as a crashing C extension or the OOM killer would."""
    _record(context, ledger.START)
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
