"""/health: PostgreSQL and Redis reachable, and how far behind the streams are."""

from django.http import JsonResponse

from workflows import statements
from workflows.streams import get_streams


def health(request):
    """Open endpoint for load balancers; 503 when a dependency is down."""
    checks: dict = {}
    try:
        statements.database_ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure to reach the database is "down", whatever the driver says
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        streams = get_streams()
        streams.ping()
        # Full Redis (maxmemory reached, noeviction): dispatch waits, so say so.
        checks["redis"] = "full" if streams.memory_full() else "ok"
        checks["streams"] = streams.lag()
    except Exception as exc:  # likewise for Redis
        checks["redis"] = f"down: {exc.__class__.__name__}"
    healthy = checks["database"] == "ok" and checks["redis"] == "ok"
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503
    )
