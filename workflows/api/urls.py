from django.urls import path
from rest_framework.routers import SimpleRouter

from workflows.api import views
from workflows.api.dead_letters import DeadLetterViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # like the seed's /workflow endpoints: no trailing slash needed
router.register("executions", views.ExecutionViewSet, basename="execution")
router.register("workflows", views.WorkflowViewSet, basename="workflow")
router.register("admin/dlq", DeadLetterViewSet, basename="dead-letter")

urlpatterns = [
    path("workflow", views.WorkflowSubmitView.as_view(), name="workflow-submit"),
    path("workflow/run", views.WorkflowRunView.as_view(), name="workflow-run"),
    path("workflow/trigger/<str:execution_id>", views.WorkflowTriggerView.as_view(), name="workflow-trigger"),
    path("workflow/<str:execution_id>", views.ExecutionStatusView.as_view(), name="workflow-status"),
    path(
        "workflow/<str:execution_id>/results", views.ExecutionResultsView.as_view(), name="workflow-results"
    ),
    path("workflow/<str:execution_id>/rerun", views.ExecutionRerunView.as_view(), name="workflow-rerun"),
    path(
        "workflow/<str:execution_id>/retrigger",
        views.ExecutionRetriggerView.as_view(),
        name="workflow-retrigger",
    ),
    path("admin/circuits", views.CircuitBreakerView.as_view(), name="circuits"),
    *router.urls,
]
