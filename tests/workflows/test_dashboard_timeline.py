"""The dashboard's timeline geometry and its way of writing durations and JSON (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from workflows.dashboard.formatting import format_duration, pretty_json
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


def test_ticks_use_a_round_step():
    timeline = timeline_of([run(1, "COMPLETED", queued=0, started=0, finished=45)], start=at(0), end=at(45))

    assert [t.label for t in timeline.ticks] == ["0", "10.0 s", "20.0 s", "30.0 s", "40.0 s"]
    assert timeline.ticks[-1].left == pytest.approx(40 / 45 * 100)


def test_nothing_queued_means_no_timeline():
    assert timeline_of([run(1, "PENDING")], start=None, end=at(1)) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123, "12 ms"),
        (3.25, "3.2 s"),
        (125, "2 m 05 s"),
        (3720, "1 h 02 m"),
        (timedelta(minutes=1), "1 m 00 s"),
    ],
)
def test_durations_are_written_in_their_natural_unit(seconds, text):
    assert format_duration(seconds) == text


def test_json_is_indented_and_keeps_non_ascii():
    assert (
        pretty_json({"a": [1, {"é": None}]}) == '{\n  "a": [\n    1,\n    {\n      "é": null\n    }\n  ]\n}'
    )
