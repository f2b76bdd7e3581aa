"""Bounds on long polls in flight in this API process: in all, and per user.

A long poll holds one of gunicorn's threads while it waits. Without a bound, a few clients
polling with `?wait=` could hold every thread and starve every other request (/health too).
Past a bound the request is refused at once with 429 and `Retry-After`, so the client learns
why and when to come back, instead of queueing behind the waiters.
"""

import contextlib
import functools
import threading
from collections import Counter

from django.conf import settings
from rest_framework.exceptions import Throttled

RETRY_AFTER_SECONDS = 1


class LongPollLimit(Throttled):
    default_code = "long_poll_limit"


class LongPollGate:
    """Counts waiters per process and per user; `slot()` admits one or raises LongPollLimit."""

    def __init__(self, *, per_process: int, per_user: int):
        self.per_process = per_process
        self.per_user = per_user
        self.lock = threading.Lock()
        self.total = 0
        self.by_user: Counter = Counter()

    @contextlib.contextmanager
    def slot(self, user_id):
        with self.lock:
            if self.total >= self.per_process:
                raise _refused(f"this API process already holds {self.per_process} long polls")
            if self.by_user[user_id] >= self.per_user:
                raise _refused(f"you already have {self.per_user} long polls waiting on this API process")
            self.total += 1
            self.by_user[user_id] += 1
        try:
            yield
        finally:
            with self.lock:
                self.total -= 1
                self.by_user[user_id] -= 1
                if not self.by_user[user_id]:
                    del self.by_user[user_id]


def _refused(reason: str) -> LongPollLimit:
    return LongPollLimit(
        wait=RETRY_AFTER_SECONDS,
        detail=f"too many long polls in flight: {reason}. Poll without `wait`, or retry later.",
    )


def long_poll_gate() -> LongPollGate:
    """This process's gate, for the current settings."""
    return _gate_for(settings.LONG_POLL_MAX_PER_PROCESS, settings.LONG_POLL_MAX_PER_USER)


@functools.cache
def _gate_for(per_process: int, per_user: int) -> LongPollGate:
    return LongPollGate(per_process=per_process, per_user=per_user)
