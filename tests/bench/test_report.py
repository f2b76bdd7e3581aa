"""The bench's table and comparison: a ratio column per peer that ran, figures measured in fewer
runs marked, and result files from before DBOS joined the bench still compared."""

from bench.figures import summarise
from bench.report import compare, format_cell, ratio, render, table


def backend(*runs: dict) -> dict:
    """A system's record as the suite writes it: its runs' figures and their summary."""
    return {
        "runs": [{"figures": figures} for figures in runs],
        "summary": summarise(list(runs)),
        "errors": [],
    }


def results(**backends: dict) -> dict:
    return {"backends": {name.replace("_", "-"): record for name, record in backends.items()}}


ENGINE = backend({"wide_500_ms": 300.0}, {"wide_500_ms": 200.0}, {"wide_500_ms": 250.0})
CELERY = backend({"wide_500_ms": 1000.0}, {"wide_500_ms": 1250.0}, {"wide_500_ms": 1500.0})
DBOS = backend({"wide_500_ms": 5000.0}, {"wide_500_ms": 6000.0}, {"wide_500_ms": 4000.0})


def table_row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return line[len(label) :].split()


def test_ratio_is_engine_median_over_the_peer_median():
    both = results(engine_pg=ENGINE, celery=CELERY, dbos=DBOS)

    assert ratio(both, "wide_500_ms", "celery") == "0.20x"
    assert ratio(both, "wide_500_ms", "dbos") == "0.05x"


def test_no_ratio_without_both_figures():
    assert ratio(results(engine_pg=ENGINE), "wide_500_ms", "dbos") == "-"
    assert ratio(results(engine_pg=ENGINE, dbos=DBOS), "load_throughput", "dbos") == "-"


def test_table_prints_a_ratio_column_per_peer():
    text = table(results(engine_pg=ENGINE, celery=CELERY, dbos=DBOS))

    assert text.splitlines()[0].split()[-2:] == ["engine(PG)/Celery", "engine(PG)/DBOS"]
    assert table_row(text, "wide 1->500->1")[-2:] == ["0.20x", "0.05x"]


def test_table_without_dbos_has_only_the_celery_ratio():
    text = table(results(engine_pg=ENGINE, celery=CELERY))

    assert "engine(PG)/Celery" in text
    assert "engine(PG)/DBOS" not in text
    assert table_row(text, "wide 1->500->1")[-1] == "0.20x"


def test_a_figure_from_fewer_runs_than_the_others_says_so():
    record = backend(
        {"wide_5000_ms": 46000.0, "wide_500_ms": 6000.0}, {"wide_500_ms": 5000.0}, {"wide_500_ms": 7000.0}
    )

    assert format_cell(record, "wide_5000_ms") == "46,000 (1 run)"
    assert format_cell(record, "wide_500_ms") == "6,000 (5,000-7,000)"


def test_a_single_run_is_not_marked():
    assert format_cell(backend({"wide_500_ms": 6000.0}), "wide_500_ms") == "6,000"


def test_compare_a_result_file_from_before_dbos_with_one_that_has_it():
    old = results(engine_pg=ENGINE, celery=CELERY)
    new = results(engine_pg=ENGINE, celery=CELERY, dbos=DBOS)

    text = compare(old, new, a_name="old", b_name="new")

    dbos_rows = [line.split() for line in text.splitlines() if line.startswith("dbos")]
    assert len(dbos_rows) == 1
    assert dbos_rows[0][-3:] == ["-", "5,000", "-"]
    engine_row = next(line for line in text.splitlines() if line.startswith("engine-pg"))
    assert engine_row.split()[-3:] == ["250", "250", "+0.0%"]


def test_compare_two_files_without_dbos_lists_no_dbos_rows():
    old = results(engine_pg=ENGINE, celery=CELERY)

    text = compare(old, old, a_name="a", b_name="b")

    assert not [line for line in text.splitlines() if line.startswith("dbos")]


def test_render_ends_with_the_suite_duration():
    document = {**results(engine_pg=ENGINE, celery=CELERY, dbos=DBOS), "duration_seconds": 287.4}

    assert render(document).splitlines()[-1] == "Duration: 4m47s"


def cut_off(record: dict, key: str) -> dict:
    """`record` with its first run's `key` cut off at its time limit."""
    record["runs"][0]["lower_bounds"] = [key]
    return record


def test_a_cut_off_figure_is_shown_as_a_lower_bound():
    record = cut_off(backend({"wide_5000_ms": 30000.0}, {}, {}), "wide_5000_ms")

    assert format_cell(record, "wide_5000_ms") == ">30,000 (1 run)"


def test_the_ratio_to_a_cut_off_peer_is_an_upper_bound():
    engine = backend({"wide_5000_ms": 3000.0})
    dbos = cut_off(backend({"wide_5000_ms": 30000.0}), "wide_5000_ms")

    assert ratio(results(engine_pg=engine, dbos=dbos), "wide_5000_ms", "dbos") == "<0.10x"


def test_no_ratio_between_two_lower_bounds():
    engine = cut_off(backend({"wide_5000_ms": 3000.0}), "wide_5000_ms")
    dbos = cut_off(backend({"wide_5000_ms": 30000.0}), "wide_5000_ms")

    assert ratio(results(engine_pg=engine, dbos=dbos), "wide_5000_ms", "dbos") == "-"


def test_compare_marks_a_lower_bound_and_gives_no_change():
    old = results(dbos=backend({"wide_5000_ms": 46000.0}))
    new = results(dbos=cut_off(backend({"wide_5000_ms": 30000.0}), "wide_5000_ms"))

    row = next(line for line in compare(old, new, a_name="a", b_name="b").splitlines() if "5000" in line)

    assert row.split()[-3:] == ["46,000", ">30,000", "-"]


def test_the_one_request_load_is_compared_with_the_peers_load():
    engine = backend({"load_run_throughput": 150.0, "load_throughput": 100.0})
    celery = backend({"load_throughput": 120.0})

    text = table(results(engine_pg=engine, celery=celery))

    assert (
        ratio(results(engine_pg=engine, celery=celery), "load_run_throughput", "celery", "load_throughput")
        == "1.25x"
    )
    assert table_row(text, "load, one request per workflow (run?wait=): workflows/s")[-1] == "1.25x"
    assert table_row(text, "load: throughput (workflows/s)")[-1] == "0.83x"
