"""Retry policy: how many attempts a node gets and how long to wait before the next. Pure logic."""

import random
from collections.abc import Mapping
from dataclasses import dataclass

MAX_EXPONENT = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base * 2**(attempt-1), capped, then +/- jitter fraction."""

    max_attempts: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.2

    @classmethod
    def for_node(cls, node_retry: Mapping | None, defaults: "RetryPolicy") -> "RetryPolicy":
        """The node's `retry` block over the settings' defaults."""
        if not node_retry:
            return defaults
        return cls(
            max_attempts=int(node_retry.get("max_attempts", defaults.max_attempts)),
            backoff_base=float(node_retry.get("backoff_base", defaults.backoff_base)),
            backoff_max=float(node_retry.get("backoff_max", defaults.backoff_max)),
            jitter=float(node_retry.get("jitter", defaults.jitter)),
        )

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
        # The exponent is capped: 2**1024 is past any float, and far past backoff_max already.
        raw = min(self.backoff_max, self.backoff_base * 2.0 ** min(max(0, attempt - 1), MAX_EXPONENT))
        if self.jitter:
            spread = raw * min(self.jitter, 1.0)
            raw += (rng or random).uniform(-spread, spread)
        return max(0.0, raw)

    def exhausted(self, attempts_made: int) -> bool:
        return attempts_made >= self.max_attempts
