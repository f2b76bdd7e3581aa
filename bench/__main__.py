"""`python -m bench [--quick] [--runs N] [--only ...]` runs the suite.

`python -m bench compare A B` prints the differences between two result files.
"""

import argparse
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.engine_stack import REPO
from bench.shapes import MIN_TIME_LIMIT
from bench.suite import BACKENDS, Options, run_suite

OUT_DIR = REPO / "var" / "bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orchestrator"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BUDGET_SECONDS = 300.0  # `make bench` stays under 5 minutes (issue 15)


def parse_only(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown system(s) {unknown}; choose from {','.join(BACKENDS)}")
    return tuple(name for name in BACKENDS if name in names)


def main(argv: list[str]) -> int:
    if argv[:1] == ["compare"]:
        return compare(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run of each shape, no 5,000-wide")
    parser.add_argument("--runs", type=int, help="runs per shape (default 3, 1 with --quick)")
    parser.add_argument(
        "--only", type=parse_only, default=BACKENDS, help=f"comma-separated subset of {','.join(BACKENDS)}"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET_SECONDS,
        help=f"seconds the whole suite should take (default {BUDGET_SECONDS:.0f}; 0: no limit): DBOS's "
        f"5,000-wide, run last, gets what is left (at least {MIN_TIME_LIMIT:.0f} s) and is cut off there",
    )
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    options = Options(
        runs=args.runs or (1 if args.quick else 3),
        wide_sizes=(500,) if args.quick else (500, 5000),
        only=args.only,
        database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        out_dir=OUT_DIR,
        stamp=stamp,
        budget_seconds=args.budget or None,
    )
    # SIGTERM takes the Ctrl-C path, so the same teardown stops every process the suite started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    results = run_suite(options)
    path = OUT_DIR / f"{stamp}.json"
    report.write_json(results, path)
    print(report.render(results))
    print(f"\nResults: {path}")
    failed = any(record.get("errors") for record in results["backends"].values())
    return 130 if results.get("interrupted") else (1 if failed else 0)


def compare(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench compare")
    parser.add_argument("a", help="results file (path, or timestamp under var/bench/)")
    parser.add_argument("b")
    args = parser.parse_args(argv)
    a, b = report.load_results(args.a, OUT_DIR), report.load_results(args.b, OUT_DIR)
    print(report.compare(a, b, a_name=Path(args.a).stem, b_name=Path(args.b).stem))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
