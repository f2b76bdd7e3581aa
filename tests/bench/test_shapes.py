"""The shapes of one bench run: which run on which system, and which run once only."""

from bench.shapes import plan
from bench.suite import FIRST_RUN_ONLY


def test_engine_plan_has_every_shape_every_run():
    shapes = plan(wide_sizes=(500, 5000), submit=True)

    assert [s.name for s in shapes] == ["load", "wide-500", "wide-5000", "deep", "submit"]
    assert not any(s.first_run_only for s in shapes)


def test_peer_plan_has_no_submit():
    assert [s.name for s in plan(wide_sizes=(500,), submit=False)] == ["load", "wide-500", "deep"]


def test_dbos_runs_its_5000_wide_in_the_first_run_only():
    shapes = plan(wide_sizes=(500, 5000), submit=False, first_run_only=FIRST_RUN_ONLY["dbos"])

    assert [s.name for s in shapes if s.first_run_only] == ["wide-5000"]


def test_first_run_only_names_a_shape_that_is_not_planned_is_harmless():
    shapes = plan(wide_sizes=(500,), submit=False, first_run_only=FIRST_RUN_ONLY["dbos"])

    assert not any(s.first_run_only for s in shapes)
