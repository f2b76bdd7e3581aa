"""One run of the suite over a plan: a last-run-only shape runs in the last run only, and a
figure cut off at its time limit is recorded as a lower bound."""

from collections.abc import Callable

from bench import suite
from bench.procstat import RoleMeter
from bench.shapes import Outcome, Shape


class IdleStack:
    """A system under test with no processes to measure."""

    rss_roles = ()

    def roles(self) -> dict:
        return {}


class CalmSupervisor:
    def exited(self) -> dict:
        return {}


def run(index: int, runs: int, plan: list[Shape]) -> dict:
    stack = IdleStack()
    meter = RoleMeter(stack.roles, rss_roles=stack.rss_roles)
    return suite.run_once("peer", stack, meter, plan, CalmSupervisor(), index, runs)


def plan_with_a_cut_off_shape(ran: list[str]) -> list[Shape]:
    def shape(name: str, outcome: Outcome) -> Callable[[object], Outcome]:
        def run_shape(stack) -> Outcome:
            ran.append(name)
            return outcome

        return run_shape

    return [
        Shape("wide-500", shape("wide-500", Outcome({"wide_500_ms": 6000.0}, tasks=502))),
        Shape(
            "wide-5000",
            shape("wide-5000", Outcome({"wide_5000_ms": 30000.0}, lower_bounds=("wide_5000_ms",))),
            last_run_only=True,
        ),
    ]


def test_a_last_run_only_shape_is_left_out_of_the_other_runs():
    ran: list[str] = []

    first = run(0, 3, plan_with_a_cut_off_shape(ran))

    assert ran == ["wide-500"]
    assert set(first["shapes"]) == {"wide-500"}
    assert first["lower_bounds"] == []


def test_the_last_run_runs_it_and_records_its_lower_bound():
    ran: list[str] = []

    last = run(2, 3, plan_with_a_cut_off_shape(ran))

    assert ran == ["wide-500", "wide-5000"]
    assert last["figures"]["wide_5000_ms"] == 30000.0
    assert last["lower_bounds"] == ["wide_5000_ms"]


def options(wide_sizes: tuple[int, ...]) -> suite.Options:
    return suite.Options(
        runs=3,
        wide_sizes=wide_sizes,
        only=suite.BACKENDS,
        database_url="",
        redis_url="",
        out_dir=None,
        stamp="",
    )


def test_the_growth_shape_runs_on_the_engine_on_postgresql_once_in_a_full_bench():
    full, quick = options((500, 5000)), options((500,))

    assert suite.growth_widths("engine-pg", full) == (50_000,)
    assert "wide-50000" in suite.LAST_RUN_ONLY["engine-pg"]  # once, in the last run
    assert suite.growth_widths("engine-pg", quick) == ()  # no 5,000-wide to compare it with
    assert suite.growth_widths("engine-embedded", full) == suite.growth_widths("dbos", full) == ()
