"""Workflow definitions, their executions and one TaskRun per node per execution.

PostgreSQL is the source of truth: everything a user sees is here and survives a Redis flush.
The orchestrator is the only hot-path writer of Execution and TaskRun rows.
"""

import uuid

from django.conf import settings
from django.db import models


class Workflow(models.Model):
    """A validated, normalised DAG definition."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    dag = models.JSONField()
    content_hash = models.CharField(max_length=64)
    node_count = models.PositiveIntegerField()
    timeout_seconds = models.FloatField(null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # API workflow list: newest first per owner.
            models.Index(fields=["owner", "-created_at"], name="workflow_owner_created"),
            models.Index(fields=["content_hash"], name="workflow_content_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class Execution(models.Model):
    """One run of a workflow."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"
        TIMED_OUT = "TIMED_OUT"

    TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)
    # Maintained by the orchestrator in the same transaction as the TaskRun changes, so the
    # status endpoint and completion detection never count rows.
    total_tasks = models.PositiveIntegerField()
    unfinished_tasks = models.PositiveIntegerField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    # A sub-workflow's execution: the parent's `workflow` task that started it (workflows/subworkflows.py).
    parent_task = models.ForeignKey(
        "TaskRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="child_executions",
        db_index=False,  # the partial index below: most executions have no parent
    )
    # Its Redis stop flag may not match its status yet: set by whoever ends it or runs it again,
    # cleared once Redis has taken the change (workflows/stop_flags.py).
    stop_flag_stale = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [  # workflows/permissions.py says who needs them
            ("cancel_any_execution", "Can cancel any user's execution"),
            ("run_any_execution", "Can trigger, re-run or re-trigger any user's execution"),
        ]
        indexes = [
            # API execution list and dashboard: filter by status, newest first.
            models.Index(fields=["status", "-created_at"], name="execution_status_created"),
            models.Index(fields=["owner", "-created_at"], name="execution_owner_created"),
            # Reaper: running executions past their deadline.
            models.Index(
                fields=["deadline"],
                name="execution_running_deadline",
                condition=models.Q(status="RUNNING", deadline__isnull=False),
            ),
            # Submit: the per-user cap on open executions counts these (services.workflow_submit).
            models.Index(
                fields=["owner"],
                name="execution_owner_open",
                condition=models.Q(status__in=["PENDING", "RUNNING"]),
            ),
            # A parent's children, for stopping them with it and linking them in the API.
            models.Index(
                fields=["parent_task"],
                name="execution_parent_task",
                condition=models.Q(parent_task__isnull=False),
            ),
            # Reaper: stop flags Redis has not taken yet (stop_flags.sync).
            models.Index(
                fields=["id"], name="execution_stop_flag_stale", condition=models.Q(stop_flag_stale=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} / {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class TaskRun(models.Model):
    """One node of one execution: its state, resolved config, output or error, and timings."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"
        SKIPPED = "SKIPPED"
        CANCELLED = "CANCELLED"

    TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.SKIPPED, Status.CANCELLED})
    # A dependency in one of these states lets its children proceed.
    SATISFIED = frozenset({Status.COMPLETED, Status.SKIPPED})

    # No index of its own: `taskrun_execution_node` starts with it. A second index on the column
    # alone let the planner, before it had statistics, look children up by execution and filter
    # thousands of siblings for each one.
    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="task_runs", db_index=False
    )
    node_id = models.CharField(max_length=128)
    handler = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(default=0)
    # Attempt number before the current budget began (raised by a DLQ retry: fresh attempts).
    retry_base = models.PositiveIntegerField(default=0)
    pending_dependencies = models.PositiveIntegerField()
    config = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            # Orchestrator resolves children by (execution, node id); also the fencing key.
            models.UniqueConstraint(fields=["execution", "node_id"], name="taskrun_execution_node"),
        ]
        indexes = [
            # Reaper: QUEUED tasks whose publish may have been lost, oldest first.
            models.Index(
                fields=["queued_at"],
                name="taskrun_queued_at",
                condition=models.Q(status="QUEUED"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class TaskAttempt(models.Model):
    """A failed attempt of a task: kept so every attempt's error stays visible after retries."""

    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="failed_attempts")
    attempt = models.PositiveIntegerField()
    error = models.JSONField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["task_run", "attempt"]
        constraints = [
            # A redelivered failure is recorded once.
            models.UniqueConstraint(fields=["task_run", "attempt"], name="taskattempt_run_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.task_run.node_id} attempt {self.attempt}"


class IdempotencyRecord(models.Model):
    """The first successful answer to a request sent with an `Idempotency-Key`, replayed to its
    retries (workflows/idempotency.py). Written in the same transaction as what the request made."""

    # No index of its own: `idempotency_user_key` and `idempotency_user_created` start with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    key = models.CharField(max_length=255)
    # sha256 of method, path and body: the same key with another request is refused.
    request_fingerprint = models.CharField(max_length=64)
    # Null only inside the transaction of the request that claimed the key, never once committed.
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One answer per key and user; a concurrent twin waits on this index, then replays.
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key"),
        ]
        indexes = [
            # Claiming a key first deletes the user's expired records (idempotency.idempotent_answer).
            models.Index(fields=["user", "created_at"], name="idempotency_user_created"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"
