"""The execution timeline: one bar per task, queued → started → finished, on the execution's span,
so the slow nodes stand out. Positions are percentages of the chart's width."""

from dataclasses import dataclass, replace
from datetime import datetime

from workflows.dashboard.formatting import format_duration
from workflows.models import TaskRun

# Steps a tick may take, in seconds; the first giving at most MAX_TICKS ticks wins.
TICK_STEPS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    21600,
    86400,
)
MAX_TICKS = 5
# A task that ran this many times the median (and at least SLOW_MIN_SECONDS) is flagged slow.
SLOW_FACTOR = 2.0
SLOW_MIN_SECONDS = 0.5
# The narrowest bar drawn, so a 2 ms task on a 10-minute run is still visible.
MIN_WIDTH = 0.4


@dataclass(frozen=True)
class Bar:
    run: TaskRun
    wait_left: float
    wait_width: float
    run_left: float
    run_width: float
    waited: float | None
    ran: float | None
    slow: bool = False


@dataclass(frozen=True)
class Tick:
    left: float
    label: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    ticks: list[Tick]
    span: float
    # Tasks that never reached a queue (skipped, cancelled or still waiting for their parents).
    unqueued: int


def timeline_of(runs: list[TaskRun], *, start: datetime | None, end: datetime) -> Timeline | None:
    """Bars for every task that was queued, on [start, end]; None before anything was queued."""
    queued = [run for run in runs if run.queued_at or run.started_at]
    if not queued:
        return None
    first = min(run.queued_at or run.started_at for run in queued)
    start = min(start, first) if start else first
    span = max((end - start).total_seconds(), 0.001)

    def at(moment: datetime) -> float:
        return min(max((moment - start).total_seconds() / span * 100, 0.0), 100.0)

    bars = []
    for run in sorted(queued, key=lambda r: (r.queued_at or r.started_at, r.pk)):
        queued_at = run.queued_at or run.started_at
        started, finished = run.started_at, run.finished_at or end
        wait_end = started or finished
        bars.append(
            Bar(
                run=run,
                wait_left=at(queued_at),
                wait_width=max(at(wait_end) - at(queued_at), 0.0),
                run_left=at(started) if started else 0.0,
                run_width=max(at(finished) - at(started), MIN_WIDTH) if started else 0.0,
                waited=(wait_end - queued_at).total_seconds(),
                ran=(finished - started).total_seconds() if started else None,
            )
        )
    durations = sorted(bar.ran for bar in bars if bar.ran is not None)
    if durations:
        slow = max(durations[len(durations) // 2] * SLOW_FACTOR, SLOW_MIN_SECONDS)
        bars = [replace(bar, slow=bar.ran is not None and bar.ran >= slow) for bar in bars]
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), span)
    ticks = [Tick(s / span * 100, format_duration(s) if s else "0") for s in _steps(span, step)]
    return Timeline(bars=bars, ticks=ticks, span=span, unqueued=len(runs) - len(queued))


def _steps(span: float, step: float) -> list[float]:
    count = int(span / step + 1e-9)
    return [i * step for i in range(count + 1)]
