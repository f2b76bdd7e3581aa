"""How `wait()` follows an execution to its end, written once as a generator of long polls that
both clients drive (the sync one with blocking requests, the async one with awaits)."""

import time
from collections.abc import Callable, Generator

from orchestrator_client import endpoints
from orchestrator_client.endpoints import Call
from orchestrator_client.errors import WaitTimedOut
from orchestrator_client.models import ExecutionStatus

# Under the server's LONG_POLL_MAX_SECONDS (30 by default): a longer wait is refused with 400.
POLL_SECONDS = 10.0

ProgressCallback = Callable[[ExecutionStatus], None]


def wait_for_end(
    execution_id: str,
    *,
    timeout: float | None,
    poll_seconds: float = POLL_SECONDS,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Generator[Call[ExecutionStatus], ExecutionStatus, ExecutionStatus]:
    """Long polls of at most `poll_seconds` until the execution ends (its final status is the
    generator's return value) or `timeout` seconds pass (None: no limit), then WaitTimedOut.

    Each poll answers at once when the execution ends, so a short `poll_seconds` costs requests,
    never latency; `on_progress` hears every status seen, the last one included."""
    deadline = None if timeout is None else clock() + timeout
    last = None
    while True:
        remaining = poll_seconds if deadline is None else min(poll_seconds, deadline - clock())
        if remaining <= 0:
            raise WaitTimedOut(execution_id, timeout, last)
        last = yield endpoints.status(execution_id, wait=remaining)
        if on_progress is not None:
            on_progress(last)
        if last.finished:
            return last
