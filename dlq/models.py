"""DeadLetter: a task that exhausted its attempts (or poisoned its workers), parked for triage."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class DeadLetterQuerySet(models.QuerySet):
    def resolve(self, *, status: str, user, note: str) -> int:
        """Close the open letters among these as RETRIED or DISCARDED by `user`: the one write of
        that transition, for one letter (triage) and for all of an execution's (re-run)."""
        return self.filter(status=DeadLetter.Status.OPEN).update(
            status=status, resolved_by=user, resolved_at=timezone.now(), note=note
        )


class DeadLetter(models.Model):
    """Written by the orchestrator in the same transaction that fails the node and execution."""

    class Status(models.TextChoices):
        OPEN = "OPEN"
        RETRIED = "RETRIED"
        DISCARDED = "DISCARDED"

    # Named, not imported: the engine depends on this app, never the other way (docs/architecture.md).
    task_run = models.ForeignKey("workflows.TaskRun", on_delete=models.CASCADE, related_name="dead_letters")
    execution = models.ForeignKey(
        "workflows.Execution", on_delete=models.CASCADE, related_name="dead_letters"
    )
    node_id = models.CharField(max_length=128)
    handler = models.CharField(max_length=100)
    config = models.JSONField(null=True, blank=True)
    attempt = models.PositiveIntegerField()
    category = models.CharField(max_length=32)
    code = models.CharField(max_length=100)
    message = models.TextField()
    traceback = models.TextField(blank=True, default="")
    traceback_hash = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, default="")

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Triage lists: open letters first, filtered by handler or category.
            models.Index(fields=["status", "-created_at"], name="deadletter_status_created"),
            models.Index(fields=["handler", "status"], name="deadletter_handler_status"),
            models.Index(fields=["category", "status"], name="deadletter_category_status"),
            models.Index(fields=["traceback_hash"], name="deadletter_traceback_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} ({self.category}: {self.code})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


def dead_letter_record(
    *, task_run_id: int, execution_id, node_id: str, handler: str, config, attempt: int, error: dict
) -> DeadLetter:
    """The one writer of a new letter (the engine calls it in the transaction that fails the
    node): the error's fields, each cut to what its column holds."""
    return DeadLetter.objects.create(
        task_run_id=task_run_id,
        execution_id=execution_id,
        node_id=node_id,
        handler=handler,
        config=config,
        attempt=attempt,
        category=str(error.get("category", "unknown"))[:32],
        code=str(error.get("code", "error"))[:100],
        message=str(error.get("message", "")),
        traceback=str(error.get("traceback", "")),
        traceback_hash=str(error.get("traceback_hash", ""))[:64],
    )
