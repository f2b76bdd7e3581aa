from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orchestrator_site.health import health

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("dashboard/", include("workflows.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    path("api/v1/", include("workflows.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("django_prometheus.urls")),
]

handler404 = "workflows.api.errors.not_found"
handler500 = "workflows.api.errors.server_error"
