"""GET /api/v1/: the API root, every endpoint with its absolute URL (JSON, or DRF's browsable page)."""

from urllib.parse import unquote

from django.urls import URLPattern, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows.api import urls as api_urls


class ApiRootView(APIView):
    """Every endpoint by its route name; {name} in a URL stands for a path parameter."""

    # Open on purpose: it lists URLs that /api/schema and /docs already publish, each listed
    # endpoint still needs a token or a session, and the startup banner links here, so a person
    # following it should land on a map (with DRF's login link), not on a 401.
    permission_classes = [permissions.AllowAny]

    def get_view_name(self) -> str:
        return "Workflow orchestrator API"

    @extend_schema(operation_id="api_root", responses={200: dict[str, str]})
    def get(self, request: Request) -> Response:
        origin = request.build_absolute_uri("/").rstrip("/")
        links = {name: origin + path for name, path in endpoint_paths().items()}
        links["schema"] = origin + reverse("schema")
        links["docs"] = origin + reverse("docs")
        return Response(links)


def endpoint_paths() -> dict[str, str]:
    """Each named route of workflows.api.urls as a path, its parameters written `{name}`."""
    paths = {}
    for pattern in api_urls.urlpatterns:
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        # The routers name a detail route's parameter `pk`; the OpenAPI schema calls it `id`.
        placeholders = {
            name: "{" + ("id" if name == "pk" else name) + "}" for name in pattern.pattern.regex.groupindex
        }
        # reverse() percent-encodes the braces; a template reads better with them as written.
        paths[pattern.name] = unquote(reverse(pattern.name, kwargs=placeholders))
    return paths
