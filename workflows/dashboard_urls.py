from django.urls import path

from workflows import dashboard

urlpatterns = [
    path("", dashboard.execution_list, name="dashboard"),
    path("executions/<uuid:execution_id>", dashboard.execution_detail, name="dashboard-execution"),
    path("executions/<uuid:execution_id>/cancel", dashboard.execution_cancel, name="dashboard-cancel"),
    path("dlq", dashboard.dead_letter_list, name="dashboard-dlq"),
    path(
        "dlq/<int:dead_letter_id>/<str:action>", dashboard.dead_letter_resolve, name="dashboard-dlq-resolve"
    ),
]
