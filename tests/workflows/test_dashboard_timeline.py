"""The dashboard's timeline geometry, its time axis, and its way of writing durations and JSON (no database)."""

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from django.conf import settings

from workflows.dashboard.formatting import format_duration, pretty_json
from workflows.dashboard.time_axis import (
    MAX_LABELS,
    NARROWEST_PX,
    WIDTH_CLASSES,
    Axis,
    Tick,
    label_px,
    time_axes,
)
from workflows.dashboard.timeline import timeline_of
from workflows.models import TaskRun

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(pk: int, status: str, queued=None, started=None, finished=None) -> TaskRun:
    return TaskRun(
        pk=pk,
        node_id=f"n{pk}",
        status=status,
        queued_at=None if queued is None else at(queued),
        started_at=None if started is None else at(started),
        finished_at=None if finished is None else at(finished),
    )


def test_bars_are_placed_on_the_executions_span_in_queue_order():
    runs = [
        run(2, "COMPLETED", queued=5, started=6, finished=10),
        run(1, "COMPLETED", queued=0.001, started=1, finished=2),
        run(3, "PENDING"),
    ]

    timeline = timeline_of(runs, start=at(0), end=at(10))

    first, second = timeline.bars
    assert [b.run.pk for b in timeline.bars] == [1, 2]
    assert (second.wait_left, second.wait_width) == pytest.approx((50.0, 10.0))
    assert (second.run_left, second.run_width) == pytest.approx((60.0, 40.0))
    assert (first.ran, second.ran, second.waited) == pytest.approx((1.0, 4.0, 1.0))
    assert timeline.unqueued == 1
    assert timeline.span == 10


def test_a_running_task_reaches_now_and_a_tiny_one_stays_visible():
    runs = [
        run(1, "RUNNING", queued=0, started=0.5),
        run(2, "COMPLETED", queued=0, started=1, finished=1.0001),
    ]

    running, tiny = timeline_of(runs, start=at(0), end=at(100)).bars

    assert running.run_left + running.run_width == pytest.approx(100.0)
    assert running.ran == pytest.approx(99.5)
    assert tiny.run_width >= 0.4


def test_a_slow_task_stands_out():
    runs = [run(i, "COMPLETED", queued=0, started=0, finished=1) for i in range(1, 5)]
    runs.append(run(9, "COMPLETED", queued=0, started=0, finished=8))

    bars = timeline_of(runs, start=at(0), end=at(8)).bars

    assert [b.run.pk for b in bars if b.slow] == [9]


def labels(axis: Axis) -> list[str]:
    return [tick.label for tick in axis.ticks]


def axis_at(axes: list[Axis], width: float) -> Axis:
    """The axis the stylesheet shows on a chart `width` px wide."""
    index = max(i for i, start in enumerate(WIDTH_CLASSES) if width >= start)
    return next(axis for axis in axes if index in axis.width_classes)


def test_the_axis_starts_at_0_and_steps_by_round_numbers_in_one_lower_case_unit():
    timeline = timeline_of([run(1, "COMPLETED", queued=0, started=0, finished=45)], start=at(0), end=at(45))

    assert labels(axis_at(timeline.axes, 600)) == ["0", "10 s", "20 s", "30 s", "40 s"]
    assert axis_at(timeline.axes, 600).ticks[-1].left == pytest.approx(40 / 45 * 100)


@pytest.mark.parametrize(
    ("span", "width", "expected"),
    [
        (0.528, 200, ["0", "200 ms", "400 ms"]),
        (0.528, 600, ["0", "100 ms", "200 ms", "300 ms", "400 ms", "500 ms"]),
        (17.3, 200, ["0", "5 s", "10 s", "15 s"]),
        (1.3, 300, ["0", "0.5 s", "1 s"]),
        (600, 300, ["0", "5 min", "10 min"]),
        (3 * 3600, 600, ["0", "1 h", "2 h", "3 h"]),
    ],
)
def test_the_number_of_ticks_follows_the_charts_width(span, width, expected):
    assert labels(axis_at(time_axes(span), width)) == expected


@pytest.mark.parametrize(
    "span", [0.0004, 0.003, 0.528, 0.9, 1.3, 4.2, 17.3, 45, 100, 130, 600, 3000, 7300, 2e5]
)
def test_labels_never_overlap_or_leave_the_chart_and_are_at_most_six(span):
    for axis in time_axes(span):
        width = max(WIDTH_CLASSES[axis.width_classes[0]], NARROWEST_PX)
        assert axis.ticks[0] == Tick(0.0, "0", "start") and len(axis.ticks) <= MAX_LABELS
        boxes = []
        for tick in axis.ticks:
            x, size = tick.left / 100 * width, label_px(tick.label)
            left = {"start": x, "middle": x - size / 2, "end": x - size}[tick.anchor]
            boxes.append((left, left + size))
        assert all(right <= next_left for (_, right), (next_left, _) in pairwise(boxes))
        assert boxes[-1][1] <= width + 1e-6
        assert all(re.fullmatch(r"0|[\d.]+ (ms|s|min|h)", tick.label) for tick in axis.ticks)


def test_the_stylesheet_has_a_container_query_for_every_width_class():
    css = (Path(settings.BASE_DIR) / "workflows/static/dashboard/dashboard.css").read_text()

    for index, start in enumerate(WIDTH_CLASSES):
        end = WIDTH_CLASSES[index + 1] if index + 1 < len(WIDTH_CLASSES) else None
        if index == 0:
            query = f"(width < {end}px)"
        elif end is None:
            query = f"({start}px <= width)"
        else:
            query = f"({start}px <= width < {end}px)"
        assert f"@container timeline-axis {query} {{ .timeline .axis .ticks.fit-{index} " in css


def test_nothing_queued_means_no_timeline():
    assert timeline_of([run(1, "PENDING")], start=None, end=at(1)) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123, "12 ms"),
        (3.25, "3.2 s"),
        (125, "2 min 05 s"),
        (3720, "1 h 02 min"),
        (timedelta(hours=24), "24 h"),
        (timedelta(minutes=1), "1 min 00 s"),
    ],
)
def test_durations_are_written_in_their_natural_unit(seconds, text):
    assert format_duration(seconds) == text


def test_json_is_indented_and_keeps_non_ascii():
    assert (
        pretty_json({"a": [1, {"é": None}]}) == '{\n  "a": [\n    1,\n    {\n      "é": null\n    }\n  ]\n}'
    )
