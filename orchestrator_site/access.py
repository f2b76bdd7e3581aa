"""Who may read the operations pages. /metrics shows per-view traffic, dead-letter counts and
circuit states: staff, or Prometheus with METRICS_TOKEN as a bearer token. The API schema and
/docs: signed-in users. A setting opens each to everyone (METRICS_PUBLIC, API_DOCS_PUBLIC)."""

import hmac

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import BasePermission

# The split view serves Swagger UI's start-up script from a URL, not inline: the page's
# Content-Security-Policy allows no inline script.
_swagger = SpectacularSwaggerSplitView.as_view(url_name="schema")


def metrics(request):
    """Prometheus exposition, for staff sessions and holders of METRICS_TOKEN."""
    if settings.METRICS_PUBLIC or request.user.is_staff or _bearer_matches(request, settings.METRICS_TOKEN):
        return ExportToDjangoView(request)
    return HttpResponse(
        "metrics need a staff session or 'Authorization: Bearer <METRICS_TOKEN>'\n",
        status=401,
        content_type="text/plain",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


def _bearer_matches(request, token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), token.encode())
    )


class DocsReaders(BasePermission):
    """The schema: any authenticated caller (token or session), or anyone when API_DOCS_PUBLIC."""

    def has_permission(self, request, view) -> bool:
        return settings.API_DOCS_PUBLIC or bool(request.user and request.user.is_authenticated)


schema = SpectacularAPIView.as_view(permission_classes=[DocsReaders])


def docs(request):
    """Swagger UI; a browser that is not signed in is sent to the login page first."""
    if settings.API_DOCS_PUBLIC or request.user.is_authenticated:
        return _swagger(request)
    return redirect_to_login(request.get_full_path())
