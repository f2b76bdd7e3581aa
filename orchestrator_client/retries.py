"""When to send a request again, and after how long: pure policy, shared by both clients."""

import random
from dataclasses import dataclass

from orchestrator_client.errors import OrchestratorError, RateLimited, ServerUnreachable, Unavailable


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429 and 503 answers (any request: the server did not act on it) and of
    connection failures (repeatable requests only), with exponential backoff and jitter.

    A server's `Retry-After` is honoured as given; one longer than `backoff_max` is not waited
    out here: the error is raised at once, carrying `retry_after`, for the caller to decide.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.2

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, failure: OrchestratorError, *, repeatable: bool) -> float | None:
        """Seconds to wait before attempt `attempt + 1` after `failure`, or None to give up."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(failure, ServerUnreachable):
            return self.backoff(attempt) if repeatable else None
        if not isinstance(failure, (RateLimited, Unavailable)):
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= self.backoff_max else None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        """base * 2^(attempt-1), at most backoff_max, minus up to `jitter` of it so that clients
        refused together do not all come back together."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (1 - self.jitter * random.random())
