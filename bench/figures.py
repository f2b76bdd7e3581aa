"""The figures the suite reports, in table order, and how runs are summarised."""

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    digits: int = 1
    higher_is_better: bool = False
    # The peers' figure this one is compared with, when it is not the same key (the engine's
    # one-request load against the peers' load).
    peer_key: str | None = None


# CPU per task is reported per shape: pooled over shapes it would only reflect the shape mix.
CPU_SHAPES = {"load": "load", "wide-500": "wide 500"}
CPU_ROLES = {
    "api": "API",
    "worker": "worker",
    "orchestrator": "orchestrator",
    "reaper": "reaper",
    "postgres": "PostgreSQL",
    "redis": "Redis",
}

FIGURES = [
    Figure("load_throughput", "load: throughput (workflows/s)", 1, higher_is_better=True),
    Figure("load_p50_ms", "load: P50 latency submit->terminal (ms)", 0),
    Figure("load_p95_ms", "load: P95 latency (ms)", 0),
    Figure("load_p99_ms", "load: P99 latency (ms)", 0),
    Figure("load_completed", "load: COMPLETED (of 250)", 0, higher_is_better=True),
    Figure(
        "load_run_throughput",
        "load, one request per workflow (run?wait=): workflows/s",
        1,
        higher_is_better=True,
        peer_key="load_throughput",
    ),
    Figure("load_run_p50_ms", "load, one request per workflow: P50 (ms)", 0, peer_key="load_p50_ms"),
    Figure("wide_500_ms", "wide 1->500->1: trigger->COMPLETED (ms)", 0),
    Figure("wide_5000_ms", "wide 1->5000->1: trigger->COMPLETED (ms)", 0),
    Figure("wide_50000_ms", "wide 1->50000->1, once: trigger->COMPLETED (ms)", 0),
    Figure("deep_100_ms_per_hop", "deep 100-chain: ms per hop", 2),
    Figure("deep_100_executed_ms_per_step", "deep 100-chain: ms per step, dequeue->end", 2),
    Figure("submit_1000_ms", "submit 1,000-node DAG (ms)", 0),
    Figure("rss_api_mib", "peak RSS api, largest process (MiB)", 0),
    Figure("rss_worker_mib", "peak RSS worker, largest process (MiB)", 0),
    Figure("rss_orchestrator_mib", "peak RSS orchestrator, largest (MiB)", 0),
    Figure("rss_reaper_mib", "peak RSS reaper (MiB)", 0),
    *(
        Figure(f"cpu_{shape}_{role}", f"CPU s / 1,000 tasks, {title}: {label}", 2)
        for shape, title in CPU_SHAPES.items()
        for role, label in CPU_ROLES.items()
    ),
]
BY_KEY = {figure.key: figure for figure in FIGURES}


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per figure: median, min and max over the runs that produced it."""
    summary = {}
    for figure in FIGURES:
        values = [run[figure.key] for run in runs if run.get(figure.key) is not None]
        if values:
            summary[figure.key] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "values": values,
            }
    return summary
