"""A clock the test moves: the reaper and retry scheduling read it instead of the system's."""

import time

from resilience.clock import Clock


class ManualClock(Clock):
    """Starts at the system's time (rows written meanwhile carry real timestamps), then moves
    only when told."""

    def __init__(self):
        self.seconds = time.time()

    def time(self) -> float:
        return self.seconds

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
