"""Admin: executions with their task runs inline, workflows; read-only (state changes are services)."""

from django.contrib import admin, messages

from workflows import services
from workflows.models import Execution, TaskRun, Workflow


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    fields = ["node_id", "handler", "status", "attempt", "started_at", "finished_at", "worker", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workflow",
        "status",
        "total_tasks",
        "unfinished_tasks",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["id", "workflow__name"]
    inlines = [TaskRunInline]
    actions = ["cancel_selected"]
    list_select_related = ["workflow"]

    @admin.action(description="Cancel selected executions")
    def cancel_selected(self, request, queryset):
        done = 0
        for execution in queryset:
            try:
                services.execution_cancel(execution=execution)
                done += 1
            except services.ServiceError:
                continue
        self.message_user(request, f"{done} execution(s) cancelled.", messages.SUCCESS)


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "id", "node_count", "timeout_seconds", "owner", "created_at"]
    search_fields = ["name", "id", "content_hash"]
