"""Test-only handlers, loaded by the runner processes through HANDLER_MODULES=tests.e2e.handlers."""

import time
from pathlib import Path

from workflows.handlers import HandlerError, TaskContext, handler

SLEEP_STEP_SECONDS = 0.05


@handler("noop")
def noop(config: dict, context: TaskContext) -> dict:
    """Does nothing; the cheapest task there is."""
    return {}


@handler("e2e_echo")
def e2e_echo(config: dict, context: TaskContext) -> dict:
    """Returns its resolved config and whose task it ran, so tests see what reached the worker."""
    return {"echo": config, "execution_id": context.execution_id, "node_id": context.node_id}


@handler("e2e_sleep")
def e2e_sleep(config: dict, context: TaskContext) -> dict:
    """Sleeps up to `seconds` in small steps; stops early once `until_file` exists, if given.

    Touches `started_file` and `finished_file` (when given) so a test can see from outside that
    the task is really running, and when it is done; two sleepers waiting for each other's
    `started_file` prove that they ran at the same time.
    """
    if config.get("started_file"):
        Path(config["started_file"]).touch()
    until_file = Path(config["until_file"]) if config.get("until_file") else None
    deadline = time.monotonic() + float(config.get("seconds", 1))
    saw_until_file = False
    while time.monotonic() < deadline:
        if until_file is not None and until_file.exists():
            saw_until_file = True
            break
        time.sleep(SLEEP_STEP_SECONDS)
    if config.get("finished_file"):
        Path(config["finished_file"]).touch()
    return {"saw_until_file": saw_until_file}


@handler("e2e_fail_until")
def e2e_fail_until(config: dict, context: TaskContext) -> dict:
    """Fails permanently until `fixed_file` exists: a node an operator fixes before a re-run."""
    if not Path(config["fixed_file"]).exists():
        raise HandlerError("not fixed yet", code="not_fixed", permanent=True)
    return {"fixed_on_attempt": context.attempt}
