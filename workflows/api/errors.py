"""One error shape for the whole API: {"error": {"code", "message", "details"}}."""

from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.dag import DagError
from workflows.services import ServiceError


def error_body(code: str, message: str, details: object = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    """Map service, validation and DRF errors onto the error shape; anything else stays a 500."""
    if isinstance(exc, DagError):
        details = {"node": exc.node} if exc.node else {}
        return Response(error_body(exc.code, exc.message, details), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid_request", _first_message(exc.detail), exc.detail)
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        message = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        response.data = error_body(code if isinstance(code, str) else "error", str(message))
    return response


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
