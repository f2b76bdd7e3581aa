"""Input and output serializers for the workflow API."""

from rest_framework import serializers

from workflows.models import Execution, TaskAttempt, TaskRun, Workflow


class TriggerInput(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict)


class SubmitOutput(serializers.Serializer):
    """A new PENDING execution, as submit and "new execution" answer it."""

    workflow_id = serializers.UUIDField()
    execution_id = serializers.UUIDField()
    message = serializers.CharField()

    @classmethod
    def of(cls, execution, message: str) -> dict:
        return cls(
            {"workflow_id": execution.workflow_id, "execution_id": execution.id, "message": message}
        ).data


class WorkflowOutput(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "description",
            "node_count",
            "timeout_seconds",
            "content_hash",
            "created_at",
            "dag",
        ]
        read_only_fields = fields


class WorkflowListOutput(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["id", "name", "description", "node_count", "timeout_seconds", "created_at"]
        read_only_fields = fields


class ExecutionOutput(serializers.ModelSerializer):
    execution_id = serializers.UUIDField(source="id")
    workflow_name = serializers.CharField(source="workflow.name")

    class Meta:
        model = Execution
        fields = [
            "execution_id",
            "workflow_id",
            "workflow_name",
            "status",
            "total_tasks",
            "unfinished_tasks",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "deadline",
        ]
        read_only_fields = fields


class TaskAttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = TaskAttempt
        fields = ["attempt", "error", "started_at", "finished_at", "worker"]
        read_only_fields = fields


class TaskRunOutput(serializers.ModelSerializer):
    failed_attempts = TaskAttemptOutput(many=True, read_only=True)

    class Meta:
        model = TaskRun
        fields = [
            "node_id",
            "handler",
            "status",
            "attempt",
            "config",
            "output",
            "error",
            "queued_at",
            "started_at",
            "finished_at",
            "worker",
            "failed_attempts",
        ]
        read_only_fields = fields
