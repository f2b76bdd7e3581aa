"""Waiting for something to become true, with an overall deadline (never a fixed sleep)."""

import time
from collections.abc import Callable
from typing import Any

import pytest

# Generous on purpose: what the fault tests check is the outcome, not the speed.
WAIT_SECONDS = 90.0
POLL_SECONDS = 0.05


def poll_until(check: Callable[[], Any], *, what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Call `check` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)
