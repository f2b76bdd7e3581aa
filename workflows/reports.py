"""Dashboard-only reads: how each workflow and each handler has been doing.

Every figure is aggregated by the database in one grouped query per table; Python never walks
the runs. Users see figures about the executions they may see (`selectors.may_see`)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, FloatField, Max, Q, QuerySet
from django.db.models.functions import Cast, NullIf

from workflows import permissions
from workflows.handlers import handler_names
from workflows.models import Execution, TaskAttempt, TaskRun, Workflow
from workflows.selectors import workflows_visible_to
from workflows.streams import get_streams


def workflow_summaries(user) -> QuerySet[Workflow]:
    """Workflows `user` may see, newest first, each with `execution_count`, `completed`, `finished`,
    `running` counts, `success_rate` (completed / finished, None before any ended) and `last_run`."""
    visible = Q() if user.has_perm(permissions.VIEW_ALL_EXECUTIONS) else Q(executions__owner=user)
    ended = Q(executions__status__in=Execution.TERMINAL)
    completed = Count("executions", filter=visible & Q(executions__status=Execution.Status.COMPLETED))
    finished = Count("executions", filter=visible & ended)
    return (
        workflows_visible_to(user)
        .annotate(
            execution_count=Count("executions", filter=visible),
            completed=completed,
            finished=finished,
            running=Count("executions", filter=visible & Q(executions__status=Execution.Status.RUNNING)),
            last_run=Max("executions__created_at", filter=visible),
            success_rate=Cast(completed, FloatField()) / NullIf(Cast(finished, FloatField()), 0.0),
        )
        .order_by("-created_at")
    )  # GROUP BY drops the model's ordering


CIRCUIT_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}


def handler_circuit(circuits: dict[str, dict], name: str) -> dict:
    """A handler's circuit as the page shows it: its own, or the worst of its per-host ones
    (`<name>:<host>`, for handlers that call out), so that one open host shows."""
    own = [state for key, state in circuits.items() if key == name or key.startswith(f"{name}:")]
    return max(
        own,
        key=lambda state: (CIRCUIT_SEVERITY.get(state.get("state", ""), 0), int(state.get("failures") or 0)),
        default={},
    )


@dataclass(frozen=True)
class HandlerHealth:
    """One handler: its circuit breaker, its rate limit, and how its tasks went since a moment."""

    name: str
    registered: bool
    circuit: str  # closed, open or half_open
    consecutive_failures: int
    circuit_until: datetime | None
    rate_limit: str
    completed: int
    failed_tasks: int
    failed_attempts: int
    mean_seconds: float | None

    @property
    def success_rate(self) -> float | None:
        """Share of attempts that succeeded (a retried failure counts against it)."""
        attempts = self.completed + self.failed_attempts
        return self.completed / attempts if attempts else None


def handler_health(user, *, since: datetime) -> list[HandlerHealth]:
    """Every registered handler (and any other that ran since `since`), by name."""
    runs = TaskRun.objects.filter(
        finished_at__gte=since, status__in=[TaskRun.Status.COMPLETED, TaskRun.Status.FAILED]
    )
    attempts = TaskAttempt.objects.filter(finished_at__gte=since)
    if not user.has_perm(permissions.VIEW_ALL_EXECUTIONS):
        runs = runs.filter(execution__owner=user)
        attempts = attempts.filter(task_run__execution__owner=user)
    run_time = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    outcomes = {
        row["handler"]: row
        for row in runs.values("handler").annotate(
            completed=Count("id", filter=Q(status=TaskRun.Status.COMPLETED)),
            failed=Count("id", filter=Q(status=TaskRun.Status.FAILED)),
            mean=Avg(run_time, filter=Q(status=TaskRun.Status.COMPLETED, started_at__isnull=False)),
        )
    }
    failed_attempts = dict(
        attempts.values("task_run__handler").annotate(n=Count("id")).values_list("task_run__handler", "n")
    )
    circuits = get_streams().circuits()
    registered = handler_names()
    report = []
    for name in sorted(registered | outcomes.keys() | failed_attempts.keys()):
        row = outcomes.get(name, {})
        circuit = handler_circuit(circuits, name)
        until = float(circuit.get("until") or 0)
        report.append(
            HandlerHealth(
                name=name,
                registered=name in registered,
                circuit=circuit.get("state") or "closed",
                consecutive_failures=int(circuit.get("failures") or 0),
                circuit_until=datetime.fromtimestamp(until, UTC) if until else None,
                rate_limit=settings.RATE_LIMITS.get(name, ""),
                completed=row.get("completed", 0),
                failed_tasks=row.get("failed", 0),
                failed_attempts=failed_attempts.get(name, 0),
                mean_seconds=row["mean"].total_seconds() if row.get("mean") is not None else None,
            )
        )
    return report
