"""Time as one object that the reaper and retry scheduling ask, so that tests move a clock of
their own instead of sleeping. Production uses SYSTEM, the system's clocks."""

import time
from datetime import UTC, datetime


class Clock:
    def time(self) -> float:
        """Seconds since the epoch: deadlines and retry due times, shared between processes."""
        return time.time()

    def monotonic(self) -> float:
        """For intervals within one process: never jumps with the wall clock."""
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


SYSTEM = Clock()
