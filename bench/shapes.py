"""One run of every shape against one system under test, turned into figures.

Each shape returns (figures, tasks executed, problems). CPU is accounted over the shapes that
execute tasks (load, wide, deep); the submit shape only stores a workflow on the engine, so it
is left out of the per-task CPU figures on both sides.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import workloads
from bench.engine_client import EngineClient
from bench.figures import percentile
from bench.peer import PeerStack

LOAD_WORKFLOWS = 250
LOAD_CLIENTS = 50
LOAD_POLL = 0.1
LONG_POLL = 5.0
DEEP_LENGTH = 100
SUBMIT_NODES = 1000
SHAPE_TIMEOUT = 300.0
MIN_TIME_LIMIT = 30.0


@dataclass
class Outcome:
    figures: dict
    tasks: int = 0
    problems: list[str] | None = None
    counts_cpu: bool = True
    # Figures of a shape cut off at its time limit: the time it had, so at least that.
    lower_bounds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    name: str
    run: Callable[[object], Outcome]
    last_run_only: bool = False


def plan(
    *,
    wide_sizes: tuple[int, ...],
    submit: bool,
    last_run_only: frozenset[str] = frozenset(),
    deadline: float | None = None,
) -> list[Shape]:
    """The shapes of one run, in order; `submit` adds the engine-only shapes: submit (the peers
    have no store-without-running) and load-run (the load through the one-request run endpoint).
    A wide shape named in `last_run_only` runs once, after every other shape of the last run, and
    may take what is left until `deadline` (a `time.monotonic()` value), at least
    MIN_TIME_LIMIT seconds; the peer's client cuts it off there."""

    def wide(width: int) -> Shape:
        name = f"wide-{width}"
        if name not in last_run_only:
            return Shape(name, lambda stack: run_wide(stack, width))
        return Shape(
            name, lambda stack: run_wide(stack, width, time_limit=time_left(deadline)), last_run_only=True
        )

    shapes = [
        Shape("load", run_load),
        *([Shape("load-run", lambda stack: run_load(stack, one_request=True))] if submit else []),
        *[wide(n) for n in wide_sizes],
        Shape("deep", run_deep),
        *([Shape("submit", run_submit)] if submit else []),
    ]
    return sorted(shapes, key=lambda shape: shape.last_run_only)  # stable: the rest keep their order


def time_left(deadline: float | None) -> float | None:
    """Seconds until `deadline`, at least MIN_TIME_LIMIT; None without a deadline."""
    return None if deadline is None else max(MIN_TIME_LIMIT, deadline - time.monotonic())


def load_figures(latencies: list[float], wall: float, completed: int) -> dict:
    return {
        "load_throughput": completed / wall if wall else None,
        "load_p50_ms": _ms(percentile(latencies, 50)),
        "load_p95_ms": _ms(percentile(latencies, 95)),
        "load_p99_ms": _ms(percentile(latencies, 99)),
        "load_completed": completed,
    }


def run_load(stack, *, one_request: bool = False) -> Outcome:
    """The load shape; with `one_request` (engine only), one POST /workflow/run?wait= per workflow,
    whose throughput and P50 are named `load_run_*` (compared with the peers' load figures) and
    whose CPU is left out of the per-task figures (the load row stays the three-request flow)."""
    shape = "load-run" if one_request else "load"
    if isinstance(stack, PeerStack):
        raw = stack.run_client("load", "--workflows", str(LOAD_WORKFLOWS), "--clients", str(LOAD_CLIENTS))
        statuses, errors, completed_status = raw["statuses"], raw["errors"], "SUCCESS"
        latencies, wall = raw["latencies"], raw["wall_seconds"]
    else:
        result = _client(stack).load(
            workflows=LOAD_WORKFLOWS,
            clients=LOAD_CLIENTS,
            poll=LOAD_POLL,
            timeout=SHAPE_TIMEOUT,
            one_request=one_request,
        )
        statuses, errors, completed_status = dict(result.statuses), result.errors, "COMPLETED"
        latencies, wall = result.latencies, result.wall_seconds
    completed = statuses.get(completed_status, 0)
    problems = []
    if completed != LOAD_WORKFLOWS:
        problems.append(f"{shape}: {completed}/{LOAD_WORKFLOWS} {completed_status}; statuses {statuses}")
        problems.extend(f"{shape}: {e}" for e in errors[:10])
    figures = load_figures(latencies, wall, completed)
    if one_request:
        figures = {
            "load_run_throughput": figures["load_throughput"],
            "load_run_p50_ms": figures["load_p50_ms"],
        }
    return Outcome(figures, tasks=2 * completed, problems=problems, counts_cpu=not one_request)


def run_wide(stack, width: int, *, time_limit: float | None = None) -> Outcome:
    key = f"wide_{width}_ms"
    if isinstance(stack, PeerStack):
        limit = ("--time-limit", f"{time_limit:.1f}") if time_limit else ()
        raw = stack.run_client("wide", "--size", str(width), *limit)
        return _peer_outcome(raw, key, raw["seconds"] * 1000, width + 1 + raw.get("extra_tasks", 0))
    timeout = time_limit or SHAPE_TIMEOUT
    raw = _client(stack).run_to_end(workloads.fan_out_in(width), poll=LONG_POLL, timeout=timeout)
    return _engine_outcome(raw, key, raw["seconds"] * 1000, f"wide-{width}")


def run_deep(stack) -> Outcome:
    key = "deep_100_ms_per_hop"
    if isinstance(stack, PeerStack):
        raw = stack.run_client("deep", "--size", str(DEEP_LENGTH))
        per_hop = raw["seconds"] * 1000 / (DEEP_LENGTH - 1)
        outcome = _peer_outcome(raw, key, per_hop, DEEP_LENGTH + raw.get("extra_tasks", 0))
        if outcome.figures[key] is not None and raw.get("executed_seconds") is not None:
            # DBOS records when a worker dequeued the workflow and when it ended: the steps
            # themselves, without the queue's and the client's polling.
            outcome.figures["deep_100_executed_ms_per_step"] = raw["executed_seconds"] * 1000 / DEEP_LENGTH
        return outcome
    raw = _client(stack).run_to_end(workloads.chain(DEEP_LENGTH), poll=LONG_POLL, timeout=SHAPE_TIMEOUT)
    return _engine_outcome(raw, key, raw["seconds"] * 1000 / (DEEP_LENGTH - 1), "deep")


def run_submit(stack) -> Outcome:
    raw = _client(stack).submit_only(workloads.layered(SUBMIT_NODES))
    return Outcome({"submit_1000_ms": raw["seconds"] * 1000}, counts_cpu=False)


def _engine_outcome(raw: dict, key: str, value: float, shape: str) -> Outcome:
    if raw["status"] != "COMPLETED":
        problem = (
            f"{shape}: execution {raw['execution_id']} ended {raw['status']} after "
            f"{raw['seconds']:.1f}s; progress {raw.get('progress')}"
        )
        return Outcome({key: None}, problems=[problem])
    return Outcome({key: value}, tasks=raw["tasks"])


def _peer_outcome(raw: dict, key: str, value: float, tasks: int) -> Outcome:
    if raw["status"] == "CUT_OFF":
        problem = (
            f"{key}: cut off after {raw['seconds']:.0f} s, its time limit (the bench's budget): a lower bound"
        )
        return Outcome({key: value}, problems=[problem], lower_bounds=(key,))
    if raw["status"] != "SUCCESS":
        return Outcome({key: None}, problems=[f"{key}: {raw['status']}"])
    return Outcome({key: value}, tasks=tasks)


def _client(stack) -> EngineClient:
    assert stack.client is not None, "stack not started"
    return stack.client


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
