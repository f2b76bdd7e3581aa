"""One error shape for the whole API: {"error": {"code", "message", "details"}}."""

import redis
import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.dag import DagError
from workflows.outages import redis_full
from workflows.services import ServiceError

log = structlog.get_logger(__name__)


def error_body(code: str, message: str, details: object = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# A dependency that is down or refusing work is the service being unavailable, not a bug: 503
# with a hint to retry, never a 500.
UNAVAILABLE = {
    redis.exceptions.ConnectionError: ("redis_unavailable", "Redis (the task broker) cannot be reached"),
    redis.exceptions.TimeoutError: ("redis_unavailable", "Redis (the task broker) did not answer in time"),
    redis.exceptions.BusyLoadingError: ("redis_unavailable", "Redis (the task broker) is loading its data"),
    OperationalError: (
        "database_unavailable",
        "the database is unreachable, out of connections or busy (a lock or statement timeout)",
    ),
    InterfaceError: ("database_unavailable", "the connection to the database was lost"),
}
# An OOM reply: maxmemory reached with the noeviction policy (`outages.redis_full`).
REDIS_FULL = ("redis_full", "Redis (the task broker) is out of memory")
RETRY_AFTER_SECONDS = 5


def exception_handler(exc, context):
    """Map service, validation and DRF errors onto the error shape, and an unreachable Redis or
    database onto 503; anything else stays a 500."""
    unavailable = next((found for kind, found in UNAVAILABLE.items() if isinstance(exc, kind)), None)
    if redis_full(exc):
        unavailable = REDIS_FULL
    if unavailable is not None:
        code, message = unavailable
        log.warning("dependency_unavailable", code=code, error=f"{exc.__class__.__name__}: {exc}")
        return Response(
            error_body(code, f"{message}; retry in a few seconds"),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DagError):
        details = {"node": exc.node} if exc.node else {}
        return Response(error_body(exc.code, exc.message, details), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)):
        return Response(
            error_body("payload_too_large", _too_large_message(exc)),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        media_type = getattr(context.get("request"), "content_type", "")
        exc = exceptions.UnsupportedMediaType(
            media_type,
            detail=f"the API takes JSON bodies only: send Content-Type: application/json, not {media_type!r}",
        )
    # Django's own exceptions get the codes of their DRF twins (DRF converts them without saying).
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid_request", _first_message(exc.detail), exc.detail)
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        message = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        response.data = error_body(
            code if isinstance(code, str) else "error", str(message), getattr(exc, "details", None)
        )
    return response


def _too_large_message(exc: Exception) -> str:
    if isinstance(exc, RequestDataTooBig):
        return (
            f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
            "(DAG_MAX_PAYLOAD_BYTES)"
        )
    if isinstance(exc, TooManyFieldsSent):
        return f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields"
    return f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files"


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            return f"{field}: {_first_message(value)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def not_found(request, exception=None):
    """JSON in the error shape for API clients, Django's page for browsers."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", f"no such path: {request.path}"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "internal error; it has been logged"), status=500)
    return defaults.server_error(request)
