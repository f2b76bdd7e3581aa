"""The dead-letter triage console: read-only, filtered by the buckets people triage by."""

from django.contrib import admin

from dlq import services
from dlq.models import DeadLetter
from workflows.admin import apply_to_selected


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

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Retry selected dead letters (fresh attempts)", permissions=["change"])
    def retry_selected(self, request, queryset):
        self._apply(request, queryset, services.dead_letter_retry, "retried")

    @admin.action(description="Discard selected dead letters", permissions=["change"])
    def discard_selected(self, request, queryset):
        self._apply(request, queryset, services.dead_letter_discard, "discarded")

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
