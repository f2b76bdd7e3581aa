"""Admin: executions with their task runs inline, workflows, and the dead-letter triage console;
read-only (state changes are services)."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet

from dlq.models import DeadLetter
from workflows import permissions, rerun, selectors, services, triage
from workflows.models import Execution, TaskRun, Workflow


def apply_to_selected(
    model_admin: admin.ModelAdmin,
    request,
    queryset: QuerySet,
    service: Callable[[Model], object],
    *,
    noun: str,
    verb: str,
) -> None:
    """A bulk action: call the service on each selected row and report how many it changed and
    why it refused the others, the same way in every admin."""
    done, refused = 0, []
    for instance in queryset:
        try:
            service(instance)
            done += 1
        except services.ServiceError as exc:
            refused.append(f"#{instance.pk}: {exc.message}")
    model_admin.message_user(request, f"{done} {noun}(s) {verb}.", messages.SUCCESS)
    if refused:
        model_admin.message_user(
            request, f"{len(refused)} not {verb}: " + "; ".join(refused), messages.WARNING
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class LiveTaskRunFormSet(BaseInlineFormSet):
    """Shows a task a worker is executing as RUNNING (with its start and worker), as the API and
    dashboard do: the overlay is applied to the instances the formset's rows are built from."""

    def get_queryset(self):
        queryset = super().get_queryset()
        if not getattr(self, "_live", False):
            selectors.with_live_status(list(queryset))  # fills the queryset's cache: same instances
            self._live = True
        return queryset


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    formset = LiveTaskRunFormSet
    fields = ["node_id", "handler", "status", "attempt", "started_at", "finished_at", "worker", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        """Who may see executions sees their tasks: no separate task permission to grant."""
        return request.user.has_perm(permissions.VIEW_ALL_EXECUTIONS)


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
    actions = ["cancel_selected", "rerun_selected"]
    list_select_related = ["workflow"]

    # Actions are offered to holders of the permission they take; the services check it again.
    def has_cancel_any_permission(self, request) -> bool:
        return request.user.has_perm(permissions.CANCEL_ANY_EXECUTION)

    def has_run_any_permission(self, request) -> bool:
        return request.user.has_perm(permissions.RUN_ANY_EXECUTION)

    @admin.action(description="Cancel selected executions", permissions=["cancel_any"])
    def cancel_selected(self, request, queryset):
        apply_to_selected(
            self,
            request,
            queryset,
            lambda execution: services.execution_cancel(execution=execution, user=request.user),
            noun="execution",
            verb="cancelled",
        )

    @admin.action(description="Re-run from failure", permissions=["run_any"])
    def rerun_selected(self, request, queryset):
        apply_to_selected(
            self,
            request,
            queryset,
            lambda execution: rerun.execution_rerun(execution=execution, user=request.user),
            noun="execution",
            verb="re-run",
        )


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "id", "node_count", "timeout_seconds", "owner", "created_at"]
    search_fields = ["name", "id", "content_hash"]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "status",
        "handler",
        "node_id",
        "category",
        "code",
        "attempt",
        "execution",
    ]
    list_filter = ["status", "category", "handler", "code"]
    search_fields = ["node_id", "message", "traceback_hash", "execution__id"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["retry_selected", "discard_selected"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """The change permission runs the bulk actions (asked without an object); a letter's own
        page stays read-only, with no Save button."""
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Retry selected dead letters (fresh attempts)", permissions=["change"])
    def retry_selected(self, request, queryset):
        self._apply(request, queryset, triage.dead_letter_retry, "retried")

    @admin.action(description="Discard selected dead letters", permissions=["change"])
    def discard_selected(self, request, queryset):
        self._apply(request, queryset, triage.dead_letter_discard, "discarded")

    def _apply(self, request, queryset, service, verb: str) -> None:
        apply_to_selected(
            self,
            request,
            queryset,
            lambda letter: service(
                dead_letter_id=letter.pk, user=request.user, note=f"{verb} from the admin"
            ),
            noun="dead letter",
            verb=verb,
        )
