"""A dependency refusing work (Redis unreachable or full, PostgreSQL down): why, counted when a
publish fails, and logged when it starts, once per interval while it lasts, and when it ends, so
a retry loop never floods the log however long the outage."""

import threading
import time

import redis
import structlog
from django.db import InterfaceError, OperationalError
from prometheus_client import Counter

log = structlog.get_logger(__name__)

LOG_INTERVAL_SECONDS = 10.0
ERROR_MAX_CHARS = 500

PUBLISH_FAILURES = Counter(
    "workflow_publish_failures_total",
    "Writes of work to Redis (tasks, completions, redeliveries) that failed, by operation and reason",
    ["operation", "reason"],
)


def reason(exc: BaseException) -> str:
    """redis_unavailable, redis_full, database_unavailable, or error: what an operator acts on."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return "redis_unavailable"
    if redis_full(exc):
        return "redis_full"
    if isinstance(exc, (OperationalError, InterfaceError)):
        return "database_unavailable"
    return "error"


def redis_full(exc: BaseException) -> bool:
    """Redis at maxmemory with noeviction refused a write: an OOM reply, which redis-py raises as
    OutOfMemoryError for a plain command but as a ResponseError quoting it from inside a script
    or a pipeline."""
    return isinstance(exc, redis.exceptions.OutOfMemoryError) or (
        isinstance(exc, redis.exceptions.ResponseError) and "OOM command not allowed" in str(exc)
    )


def describe(exc: BaseException) -> str:
    """The exception for a log line, bounded (a message may quote a huge value)."""
    return f"{exc.__class__.__name__}: {exc}"[:ERROR_MAX_CHARS]


class Outage:
    """One recurring failure (`what`): `failed()` on each failure, `ended()` on the next success."""

    def __init__(self, what: str):
        self.what = what
        self.lock = threading.Lock()
        self.started: float | None = None
        self.logged_at = 0.0
        self.failures = 0

    def failed(self, exc: BaseException, **fields) -> None:
        now = time.monotonic()
        with self.lock:
            self.failures += 1
            if self.started is None:
                self.started = now
            elif now - self.logged_at < LOG_INTERVAL_SECONDS:
                return
            self.logged_at = now
            failures, seconds = self.failures, now - self.started
        log.warning(
            "outage",
            what=self.what,
            reason=reason(exc),
            error=describe(exc),
            failures=failures,
            failing_for_seconds=round(seconds, 1),
            **fields,
        )

    def ended(self) -> None:
        if self.started is None:  # the common case, on every success: no lock
            return
        with self.lock:
            if self.started is None:
                return
            failures, seconds = self.failures, time.monotonic() - self.started
            self.started, self.failures = None, 0
        log.info("outage_over", what=self.what, failures=failures, lasted_seconds=round(seconds, 1))
