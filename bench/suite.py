"""The whole benchmark: for each system under test, start it, warm it up, run every shape N times.

Only one system runs at a time (the machine has 2 cores), and each is stopped (SIGTERM, then
SIGKILL) before the next starts, whatever happened, Ctrl-C included.
"""

import os
import platform
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import procstat, shapes
from bench.celery_stack import CeleryStack
from bench.dbos_stack import DbosStack
from bench.engine_client import ApiError
from bench.engine_stack import REPO, EmbeddedStack, PostgresStack, StackError
from bench.figures import CPU_SHAPES, summarise
from bench.peer import PeerStack
from bench.procstat import RoleMeter
from bench.supervisor import Supervisor
from bench.workloads import fan_out_in

BACKENDS = ("engine-pg", "engine-embedded", "celery", "dbos")
# DBOS's 5,000-wide takes 45-90 s a run on 2 cores: three would take `make bench` past its
# 5 minutes. It runs once, last, within what is left of the budget (see shapes.plan); the report
# marks a figure measured in fewer runs than the others, and one cut off as a lower bound.
LAST_RUN_ONLY = {"dbos": frozenset({"wide-5000"}), "engine-pg": frozenset({"wide-50000"})}
# The growth shape (issue 15): a 50,000-wide fan-out on the engine on PostgreSQL, once per full
# `make bench` (last, in its last run), so its peak RSS and its time against the 5,000-wide show
# how the engine grows.
GROWTH_WIDTHS = {"engine-pg": (50_000,)}
# Left of the budget for stopping the last system and writing the report.
TEARDOWN_SECONDS = 10.0
SHAPE_ERRORS = (ApiError, StackError, subprocess.TimeoutExpired, OSError, ValueError, KeyError)
OTHER_LOAD_WARNING = 0.05
START_ATTEMPTS = 2
WARM_UP_WORKFLOWS = 150
LOG_MARKERS = (
    '"level": "critical"',
    '"level": "error"',
    '"level": "warning"',
    "Traceback",
    "WORKER TIMEOUT",
    "exited with",
    "[ERROR]",
    "[CRITICAL]",
    "[   ERROR]",  # DBOS pads its level names
    "[ WARNING]",
)


@dataclass(frozen=True)
class Options:
    runs: int
    wide_sizes: tuple[int, ...]
    only: tuple[str, ...]
    database_url: str
    redis_url: str
    out_dir: Path
    stamp: str
    budget_seconds: float | None = None


def run_suite(options: Options) -> dict:
    """Run the selected systems; returns the results document (partial if interrupted)."""
    began = time.monotonic()
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            **asdict(options),
            "database_url": redact(options.database_url),
            "redis_url": redact(options.redis_url),
            "out_dir": str(options.out_dir),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "code": code_version(),
        "backends": {},
    }
    deadline = began + options.budget_seconds - TEARDOWN_SECONDS if options.budget_seconds else None
    try:
        for name in options.only:
            record = results["backends"].setdefault(name, {"runs": [], "errors": []})
            run_backend(name, options, record, deadline)
    except KeyboardInterrupt:
        results["interrupted"] = True
        progress("interrupted: every process the suite started has been stopped")
    for record in results["backends"].values():
        record["summary"] = summarise([run["figures"] for run in record["runs"]])
    results["duration_seconds"] = round(time.monotonic() - began, 1)
    return results


def redact(url: str) -> str:
    """A URL without its password, fit for a results file."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def code_version() -> dict:
    """The commit benchmarked, and whether the work tree differed from it."""

    def git(*args: str) -> str:
        command = ["git", *args]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed), "changed": changed.splitlines()}


def make_stack(name: str, supervisor: Supervisor, options: Options):
    if name == "engine-pg":
        return PostgresStack(supervisor, database_url=options.database_url, redis_url=options.redis_url)
    if name == "engine-embedded":
        return EmbeddedStack(supervisor)
    if name == "dbos":
        return DbosStack(supervisor, database_url=options.database_url)
    return CeleryStack(supervisor, redis_url=options.redis_url)


def run_backend(name: str, options: Options, record: dict, deadline: float | None) -> None:
    """Start, measure and stop one system; start it once more if something outside killed it at start."""
    started = time.monotonic()
    for attempt in range(1, START_ATTEMPTS + 1):
        log_dir = options.out_dir / "logs" / options.stamp / (name if attempt == 1 else f"{name}-{attempt}")
        record["log_dir"] = str(log_dir)
        killed = run_backend_once(name, options, record, log_dir, deadline)
        if not killed or attempt == START_ATTEMPTS:
            break
        progress(f"[{name}] killed from outside during start-up; starting it again")
    record["seconds"] = round(time.monotonic() - started, 1)


def run_backend_once(
    name: str, options: Options, record: dict, log_dir: Path, deadline: float | None
) -> bool:
    """True when the start failed because something outside the suite signalled its processes."""
    stack = None
    killed_at_start = False
    errors_before = len(record["errors"])
    try:
        with Supervisor(log_dir) as supervisor:
            try:
                stack = make_stack(name, supervisor, options)
                record["stack"] = stack.describe()
                progress(f"[{name}] starting (logs: {log_dir})")
                stack.start()
                warm_up(stack)
                meter = RoleMeter(stack.roles, rss_roles=stack.rss_roles)
                plan = shapes.plan(
                    wide_sizes=options.wide_sizes + growth_widths(name, options),
                    submit=not isinstance(stack, PeerStack),
                    last_run_only=LAST_RUN_ONLY.get(name, frozenset()),
                    deadline=deadline,
                )
                for index in range(options.runs):
                    run = run_once(name, stack, meter, plan, supervisor, index, options.runs)
                    record["runs"].append(run)
            except Exception as exc:  # a broken system is a result to report, not a reason to stop the suite
                killed_at_start = isinstance(exc, StackError) and exc.killed_from_outside
                record["errors"].append(f"{exc.__class__.__name__}: {exc}")
                record["traceback"] = traceback.format_exc()
                progress(f"[{name}] FAILED: {exc}")
            finally:
                record["exited_early"] = supervisor.exited()
                progress(f"[{name}] stopping")
    finally:
        if stack is not None:
            try:
                kept = stack.cleanup(keep_state=len(record["errors"]) > errors_before)
                if kept:
                    record["state_dir"] = kept
            except Exception as exc:  # cleanup is best effort; the report says what was left
                record["errors"].append(f"cleanup: {exc.__class__.__name__}: {exc}")
        problems = record.setdefault("log_problems", {})
        problems.update({f"{log_dir.name}/{log}": seen for log, seen in scan_logs(log_dir).items()})
    return killed_at_start


def growth_widths(name: str, options: Options) -> tuple[int, ...]:
    """The growth shape's widths for this system: none in a quick run (no 5,000-wide to compare)."""
    return GROWTH_WIDTHS.get(name, ()) if 5000 in options.wide_sizes else ()


def warm_up(stack) -> None:
    """Imports, connections and consumer groups in place before anything is timed: one wide
    workflow, then a short load from every client, so each API thread has its database
    connection and its prepared statements (as an API that has been serving for a while)."""
    if isinstance(stack, PeerStack):
        return  # their `ready` already ran workflows end to end
    outcome = stack.client.run_to_end(fan_out_in(20), poll=0.05, timeout=90)
    if outcome["status"] != "COMPLETED":
        raise StackError(f"warm-up workflow ended {outcome['status']}: {outcome.get('progress')}")
    load = stack.client.load(
        workflows=WARM_UP_WORKFLOWS, clients=shapes.LOAD_CLIENTS, poll=shapes.LOAD_POLL, timeout=90
    )
    if load.statuses.get("COMPLETED") != WARM_UP_WORKFLOWS:
        raise StackError(f"warm-up load: {dict(load.statuses)}; {load.errors[:3]}")


def run_once(name, stack, meter: RoleMeter, plan, supervisor: Supervisor, index: int, runs: int) -> dict:
    """Every shape once; CPU per role summed over the task-running shapes, peak RSS over the run."""
    figures: dict = {}
    problems: list[str] = []
    lower_bounds: list[str] = []
    per_shape: dict = {}
    cpu: Counter = Counter()
    tasks = 0
    pids_before = _runner_pids(stack)
    machine_before, own_before, run_began = (
        procstat.machine_busy_seconds(),
        procstat.own_cpu_seconds(),
        time.perf_counter(),
    )
    all_roles: Counter = Counter()
    meter.start_run()
    try:
        for shape in plan:
            if shape.last_run_only and index != runs - 1:
                continue
            before, began = meter.cpu(), time.perf_counter()
            try:
                outcome = shape.run(stack)
            except SHAPE_ERRORS as exc:
                outcome = shapes.Outcome({}, problems=[f"{shape.name}: {exc.__class__.__name__}: {exc}"])
            spent = meter.cpu().seconds_since(before)
            elapsed = time.perf_counter() - began
            all_roles.update(spent)
            figures.update(outcome.figures)
            problems.extend(outcome.problems or [])
            lower_bounds.extend(outcome.lower_bounds)
            if outcome.counts_cpu:
                cpu.update(spent)
                tasks += outcome.tasks
            per_shape[shape.name] = {
                "seconds": round(elapsed, 3),
                "tasks": outcome.tasks,
                "cpu_seconds": spent,
                "figures": outcome.figures,
            }
            progress(f"[{name}] run {index + 1}/{runs} {shape.name}: {_brief(outcome)} ({elapsed:.1f}s)")
            for problem in outcome.problems or []:
                progress(f"[{name}]   problem: {problem}")
            exited = supervisor.exited()
            if exited:
                raise StackError(f"process(es) exited during {shape.name}: {exited}")
            if _runner_pids(stack) != pids_before:
                problems.append(f"{shape.name}: a runner process was restarted (pids changed)")
                pids_before = _runner_pids(stack)
    finally:
        peaks, lifetime_peaks = meter.finish_run()
    # CPU the measured system and the suite itself did not use: other work on the machine, which
    # competes for the same cores and, on shared PostgreSQL/Redis servers, blurs their figures.
    wall = time.perf_counter() - run_began
    client = procstat.own_cpu_seconds() - own_before
    other = max(0.0, procstat.machine_busy_seconds() - machine_before - client - sum(all_roles.values()))
    other_share = other / (wall * (os.cpu_count() or 1))
    if other_share > OTHER_LOAD_WARNING:
        problems.append(
            f"other processes used {other:.1f} CPU-s ({other_share:.0%} of the machine) during this run: "
            "figures are disturbed"
        )
    for shape_name in CPU_SHAPES:
        measured = per_shape.get(shape_name)
        if measured and measured["tasks"]:
            for role, seconds in measured["cpu_seconds"].items():
                figures[f"cpu_{shape_name}_{role}"] = seconds / measured["tasks"] * 1000
    for role, procs in peaks.items():
        if procs:
            figures[f"rss_{role}_mib"] = max(procs.values()) / 1024
    return {
        "figures": figures,
        "lower_bounds": lower_bounds,
        "problems": problems,
        "shapes": per_shape,
        "tasks_for_cpu": tasks,
        "cpu_seconds": {role: round(s, 3) for role, s in cpu.items()},
        "peak_rss_kib": peaks,
        "lifetime_vmhwm_kib": lifetime_peaks,
        "seconds": round(wall, 1),
        "client_cpu_seconds": round(client, 1),
        "other_cpu_seconds": round(other, 1),
        "other_cpu_share": round(other_share, 3),
    }


def scan_logs(log_dir: Path) -> dict:
    """Per log file: how many lines carry each error marker, and the first few of them."""
    found = {}
    for path in sorted(log_dir.glob("*.log")):
        counts: Counter = Counter()
        first: list[str] = []
        with path.open(errors="replace") as lines:
            for line in lines:
                marker = next((m for m in LOG_MARKERS if m in line), None)
                if marker is None:
                    continue
                counts[marker] += 1
                if len(first) < 3:
                    first.append(line.strip()[:400])
        if counts:
            found[path.name] = {"counts": dict(counts), "first": first}
    return found


def progress(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _runner_pids(stack) -> dict:
    roles = stack.roles()
    return {role: sorted(roles.get(role, ())) for role in stack.rss_roles}


def _brief(outcome: shapes.Outcome) -> str:
    parts = [
        f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}"
        for key, value in outcome.figures.items()
    ]
    return ", ".join(parts) or "no figures"
