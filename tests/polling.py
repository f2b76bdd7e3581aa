"""Waiting for something to become true, with an overall deadline (never a fixed sleep)."""

import time
from collections.abc import Callable
from typing import Any

import pytest

# Generous on purpose: tests check outcomes, not speed; a slow CI machine must not fail them.
WAIT_SECONDS = 90.0
POLL_INTERVAL_SECONDS = 0.05


def poll_until(
    check: Callable[[], Any], *, what: str | Callable[[], str], timeout: float = WAIT_SECONDS
) -> Any:
    """Call `check` until it returns something truthy (returned), or fail after `timeout` seconds.

    `what` names what was awaited; a callable is asked only on failure, to report the last state.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(POLL_INTERVAL_SECONDS)
