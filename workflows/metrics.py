"""Engine metrics for Prometheus.

Gauges (queue depth, delayed, DLQ size, circuit states) are read at scrape time by a collector
registered in the API process. Counters and latencies are counted where the events happen: the
orchestrator counts outcomes; a runner started with --metrics-port serves its own /metrics.
"""

import structlog
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

log = structlog.get_logger(__name__)

TASK_OUTCOMES = Counter(
    "workflow_task_outcomes_total", "Task attempts recorded by the orchestrator", ["handler", "outcome"]
)
TASK_DURATION = Histogram(
    "workflow_task_duration_seconds",
    "Handler run time of recorded attempts",
    ["handler"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
COMPLETIONS_FENCED = Counter(
    "workflow_completions_fenced_total",
    "Completions that changed nothing: a repeated delivery, a superseded attempt, or a late one "
    "for an execution that is over",
)
BATCH_SIZE = Histogram(
    "workflow_orchestrator_batch_size", "Completions per orchestrator batch", buckets=(1, 5, 20, 100, 500)
)

REAPER_ACTIONS = Counter(
    "workflow_reaper_actions_total",
    "What reaper sweeps did, by action: tasks_reclaimed, completions_reclaimed, delayed_moved, "
    "republished, subworkflows_reported, timed_out",
    ["action"],
)

CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


class EngineCollector:
    """Reads queue depth, delayed tasks, open dead letters and circuit states when scraped."""

    def describe(self):
        # Without describe() the registry would call collect() at registration: a query at import.
        return []

    def collect(self):
        from dlq.models import DeadLetter
        from workflows.streams import get_streams

        depth = GaugeMetricFamily(
            "workflow_stream_length", "Entries in a stream (acked ones are deleted)", labels=["stream"]
        )
        pending = GaugeMetricFamily(
            "workflow_stream_pending", "Delivered but unacked entries", labels=["stream"]
        )
        oldest = GaugeMetricFamily(
            "workflow_stream_oldest_age_seconds",
            "Age of a stream's oldest entry: the longest any waiting or unfinished work has waited",
            labels=["stream"],
        )
        delayed = GaugeMetricFamily("workflow_delayed_tasks", "Tasks waiting in the delayed set")
        circuits = GaugeMetricFamily(
            "workflow_circuit_state",
            "Circuit breaker per handler: 0 closed, 1 half-open, 2 open",
            labels=["handler"],
        )
        letters = GaugeMetricFamily("workflow_dead_letters_open", "Dead letters waiting for triage")
        try:
            streams = get_streams()
            lag = streams.lag()
            for name in ("tasks", "completions"):
                if name in lag:
                    depth.add_metric([name], lag[name]["length"])
                    pending.add_metric([name], lag[name]["pending"])
            for name, age in streams.oldest_ages().items():
                oldest.add_metric([name], age)
            delayed.add_metric([], lag.get("delayed", 0))
            for handler, state in streams.circuits().items():
                circuits.add_metric([handler], CIRCUIT_STATES.get(state.get("state", "closed"), 0))
        except Exception as exc:  # Redis down: /health says so; the scrape still succeeds without these
            log.warning("metrics_redis_unavailable", error=str(exc))
        letters.add_metric([], DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).count())
        yield from (depth, pending, oldest, delayed, circuits, letters)


def register_collector() -> None:
    REGISTRY.register(EngineCollector())


def count_applied(outcomes: list[tuple[str, str, float | None]], fenced: int) -> None:
    """A committed batch's recorded attempts (handler, outcome, seconds it ran) and fenced
    completions. Counted after the commit, so a batch rolled back and applied again (one by one,
    or after reconnecting) counts once."""
    for handler, outcome, ran in outcomes:
        TASK_OUTCOMES.labels(handler, outcome).inc()
        if ran is not None:
            TASK_DURATION.labels(handler).observe(ran)
    COMPLETIONS_FENCED.inc(fenced)


def count_reaper_sweep(done: dict[str, int]) -> None:
    """Count what one reaper sweep did (its summary, action -> how many)."""
    for action, count in done.items():
        if count:
            REAPER_ACTIONS.labels(action).inc(count)


def serve(port: int) -> None:
    """Expose this runner's counters on http://0.0.0.0:port/metrics."""
    if port:
        start_http_server(port)
