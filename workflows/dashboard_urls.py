from django.contrib.auth import views as auth_views
from django.urls import path

from workflows.dashboard import dead_letters, definitions, executions, handler_health
from workflows.login_limits import RateLimitedAuthenticationForm

urlpatterns = [
    path("", executions.execution_list, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html",
            redirect_authenticated_user=True,
            authentication_form=RateLimitedAuthenticationForm,
        ),
        name="dashboard-login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="dashboard-logout"),
    path("executions/rows", executions.execution_rows, name="dashboard-execution-rows"),
    path("executions/<uuid:execution_id>", executions.execution_detail, name="dashboard-execution"),
    path("executions/<uuid:execution_id>/live", executions.execution_live, name="dashboard-execution-live"),
    path("executions/<uuid:execution_id>/cancel", executions.execution_cancel, name="dashboard-cancel"),
    path("executions/<uuid:execution_id>/rerun", executions.execution_rerun, name="dashboard-rerun"),
    path(
        "executions/<uuid:execution_id>/retrigger", executions.execution_retrigger, name="dashboard-retrigger"
    ),
    path("workflows", definitions.workflow_list, name="dashboard-workflows"),
    path("workflows/<uuid:workflow_id>", definitions.workflow_detail, name="dashboard-workflow"),
    path("workflows/<uuid:workflow_id>/trigger", definitions.workflow_trigger, name="dashboard-trigger"),
    path("handlers", handler_health.handler_list, name="dashboard-handlers"),
    path("dlq", dead_letters.dead_letter_list, name="dashboard-dlq"),
    path(
        "dlq/<int:dead_letter_id>/<str:action>",
        dead_letters.dead_letter_resolve,
        name="dashboard-dlq-resolve",
    ),
]
