from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from orchestrator_site import access
from orchestrator_site.health import health
from workflows.api.root import ApiRootView
from workflows.login_limits import RateLimitedAdminAuthenticationForm, RateLimitedAuthenticationForm

# Failed sign-ins are limited per account and per address on every login form.
admin.site.login_form = RateLimitedAdminAuthenticationForm

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("dashboard/", include("workflows.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    path("api/v1/", ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("workflows.api.urls")),
    # The browsable API's log in / log out links (session auth, any active user); this login view
    # answers the URL that `rest_framework:login` names.
    path(
        "api-auth/login/",
        LoginView.as_view(
            template_name="rest_framework/login.html", authentication_form=RateLimitedAuthenticationForm
        ),
    ),
    path("api-auth/", include("rest_framework.urls")),
    re_path(r"^api/schema/?$", access.schema, name="schema"),
    path("docs", access.docs, name="docs"),
    path("metrics", access.metrics, name="prometheus-django-metrics"),
]

handler404 = "workflows.api.errors.not_found"
handler500 = "workflows.api.errors.server_error"
