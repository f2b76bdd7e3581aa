"""The shapes of one bench run: which run on which system, and which run once, last, within
what is left of the budget."""

import time

import pytest

from bench import shapes
from bench.shapes import MIN_TIME_LIMIT, plan, time_left
from bench.suite import LAST_RUN_ONLY


def test_engine_plan_has_every_shape_every_run():
    planned = plan(wide_sizes=(500, 5000), submit=True)

    assert [s.name for s in planned] == ["load", "load-run", "wide-500", "wide-5000", "deep", "submit"]
    assert not any(s.last_run_only for s in planned)


def test_peer_plan_has_no_submit():
    assert [s.name for s in plan(wide_sizes=(500,), submit=False)] == ["load", "wide-500", "deep"]


def test_dbos_runs_its_5000_wide_last_and_in_the_last_run_only():
    planned = plan(wide_sizes=(500, 5000), submit=False, last_run_only=LAST_RUN_ONLY["dbos"])

    assert [s.name for s in planned] == ["load", "wide-500", "deep", "wide-5000"]
    assert [s.name for s in planned if s.last_run_only] == ["wide-5000"]


def test_last_run_only_naming_a_shape_that_is_not_planned_is_harmless():
    planned = plan(wide_sizes=(500,), submit=False, last_run_only=LAST_RUN_ONLY["dbos"])

    assert not any(s.last_run_only for s in planned)


def test_time_left_until_the_deadline_with_a_floor():
    now = time.monotonic()

    assert time_left(None) is None
    assert time_left(now + 100) == pytest.approx(100, abs=1)
    assert time_left(now + 5) == MIN_TIME_LIMIT
    assert time_left(now - 60) == MIN_TIME_LIMIT


def test_the_last_run_only_shape_gets_the_time_left(monkeypatch):
    limits = {}
    monkeypatch.setattr(
        shapes, "run_wide", lambda stack, width, time_limit=None: limits.setdefault(width, time_limit)
    )
    planned = plan(
        wide_sizes=(500, 5000),
        submit=False,
        last_run_only=frozenset({"wide-5000"}),
        deadline=time.monotonic() + 120,
    )

    for shape in planned:
        if shape.name.startswith("wide"):
            shape.run(object())

    assert limits[500] is None
    assert limits[5000] == pytest.approx(120, abs=1)


class FakePeer(shapes.PeerStack):
    """A peer whose client answers with a canned result and remembers what it was asked."""

    def __init__(self, answer: dict):
        self.answer = answer
        self.asked: list[tuple[str, ...]] = []

    def run_client(self, *args: str, timeout: float = 600) -> dict:
        self.asked.append(args)
        return self.answer


def test_a_wide_shape_cut_off_at_its_limit_is_a_lower_bound():
    peer = FakePeer({"seconds": 42.0, "status": "CUT_OFF", "extra_tasks": 1})

    outcome = shapes.run_wide(peer, 5000, time_limit=42.0)

    assert peer.asked == [("wide", "--size", "5000", "--time-limit", "42.0")]
    assert outcome.figures == {"wide_5000_ms": 42000.0}
    assert outcome.lower_bounds == ("wide_5000_ms",)
    assert outcome.tasks == 0
    assert "lower bound" in outcome.problems[0]


def test_a_wide_shape_without_limit_is_asked_for_none():
    peer = FakePeer({"seconds": 6.0, "status": "SUCCESS", "extra_tasks": 1})

    outcome = shapes.run_wide(peer, 500)

    assert peer.asked == [("wide", "--size", "500")]
    assert outcome.figures == {"wide_500_ms": 6000.0}
    assert outcome.lower_bounds == ()
    assert outcome.tasks == 502
