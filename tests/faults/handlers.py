"""Test-only handlers, loaded by the runners through HANDLER_MODULES=tests.faults.handlers.

Each one writes to the effects ledger (tests/faults/ledger.py) so a test can count how often a
node started and how often its side effect really happened.
"""

import os
import signal
from pathlib import Path

from tests.faults import ledger
from workflows.handlers import HandlerError, TaskContext, handler


def _record(context: TaskContext, kind: str) -> None:
    ledger.record(
        execution_id=context.execution_id, node_id=context.node_id, attempt=context.attempt, kind=kind
    )


@handler("fault_effect")
def fault_effect(config: dict, context: TaskContext) -> dict:
    """A call with a side effect: records its start, fails while `fail_while_file` exists,
    sleeps `seconds` (waking early when the worker stops it), then records its effect."""
    _record(context, ledger.START)
    condition = config.get("fail_while_file")
    if condition and Path(condition).exists():
        raise HandlerError(f"downstream unavailable while {condition} exists", code="downstream_down")
    context.sleep(float(config.get("seconds", 0)))
    _record(context, ledger.EFFECT)
    return {"pid": os.getpid(), "attempt": context.attempt}


@handler("fault_crash")
def fault_crash(config: dict, context: TaskContext) -> dict:
    """A poison task: kills its own worker process, as a crashing C extension or the OOM killer would."""
    _record(context, ledger.START)
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
