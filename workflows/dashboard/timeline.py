"""The execution timeline: one bar per task, queued → started → finished, on the execution's span,
so the slow nodes stand out. Positions are percentages of the chart's width."""

from dataclasses import dataclass, replace
from datetime import datetime

from workflows.dashboard.time_axis import Axis, time_axes
from workflows.models import TaskRun

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
class Timeline:
    bars: list[Bar]
    axes: list[Axis]  # one per range of chart widths, see time_axis
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
    return Timeline(bars=bars, axes=time_axes(span), span=span, unqueued=len(runs) - len(queued))
