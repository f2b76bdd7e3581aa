"""The DLQ API for operators: list with filters, retry, discard (Django permissions on dead letters)."""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from dlq.models import DeadLetter
from workflows import triage
from workflows.api.contract import ErrorBody
from workflows.permissions import TRIAGE_DEAD_LETTERS, VIEW_DEAD_LETTERS
from workflows.services import NotFound, ServiceError, parse_filter_id

# Dead letter ids are bigints: ASCII digits only (str.isdigit() also takes "²", which int() refuses).
LETTER_ID = re.compile(r"[0-9]{1,18}")


class DeadLetterOutput(serializers.ModelSerializer):
    resolved_by = serializers.CharField(source="resolved_by.username", default=None, allow_null=True)

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "execution_id",
            "node_id",
            "handler",
            "attempt",
            "category",
            "code",
            "message",
            "traceback",
            "traceback_hash",
            "config",
            "status",
            "created_at",
            "resolved_by",
            "resolved_at",
            "note",
        ]
        read_only_fields = fields


class ResolutionInput(serializers.Serializer):
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class DeadLetterPermissions(permissions.IsAuthenticated):
    """Reading takes dlq.view_deadletter; retry and discard take dlq.change_deadletter."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        needed = VIEW_DEAD_LETTERS if request.method in permissions.SAFE_METHODS else TRIAGE_DEAD_LETTERS
        self.message = f"this takes the {needed} permission"
        return request.user.has_perm(needed)


ID = OpenApiParameter("id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)
ALREADY_RESOLVED = OpenApiResponse(
    ErrorBody, "The dead letter is already resolved (`already_resolved`), or its execution is not failed."
)


@extend_schema_view(retrieve=extend_schema(operation_id="dead_letter_get", parameters=[ID]))
class DeadLetterViewSet(viewsets.ReadOnlyModelViewSet):
    """Dead letters, newest first; retry re-queues the task, DELETE discards the entry."""

    serializer_class = DeadLetterOutput
    permission_classes = [DeadLetterPermissions]
    filters = {"status": "status", "handler": "handler", "category": "category", "execution": "execution_id"}

    @extend_schema(
        operation_id="dead_letters_list",
        parameters=[
            OpenApiParameter("status", str, enum=list(DeadLetter.Status.values)),
            OpenApiParameter("handler", str),
            OpenApiParameter("category", str),
            OpenApiParameter("execution", OpenApiTypes.UUID),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = DeadLetter.objects.select_related("resolved_by")
        for param, field in self.filters.items():
            value = self.request.query_params.get(param)
            if value is None:
                continue
            if param == "status":
                value = value.upper()
                if value not in DeadLetter.Status.values:
                    raise ServiceError(
                        f"unknown status {value!r}; use one of {list(DeadLetter.Status.values)}"
                    )
            if param == "execution":
                value = parse_filter_id(value, "execution")
            queryset = queryset.filter(**{field: value})
        return queryset

    def get_object(self) -> DeadLetter:
        letter_id = self._id(self.kwargs["pk"])
        letter = self.get_queryset().filter(pk=letter_id).first()
        if letter is None:
            raise NotFound(f"no dead letter with id {letter_id}")
        return letter

    @extend_schema(
        operation_id="dead_letter_retry",
        parameters=[ID],
        request=ResolutionInput,
        responses={200: DeadLetterOutput, 409: ALREADY_RESOLVED},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Re-queue the task with fresh attempts; the execution runs again."""
        note = self._note(request)
        letter = triage.dead_letter_retry(dead_letter_id=self._id(pk), user=request.user, note=note)
        return Response(DeadLetterOutput(letter).data)

    @extend_schema(
        operation_id="dead_letter_discard",
        parameters=[ID],
        request=ResolutionInput,
        responses={200: DeadLetterOutput, 409: ALREADY_RESOLVED},
    )
    def destroy(self, request, pk=None):
        """Discard: close the entry (kept for the record, status DISCARDED)."""
        letter = triage.dead_letter_discard(
            dead_letter_id=self._id(pk), user=request.user, note=self._note(request)
        )
        return Response(DeadLetterOutput(letter).data, status=status.HTTP_200_OK)

    @staticmethod
    def _id(pk) -> int:
        if not LETTER_ID.fullmatch(str(pk)):
            raise NotFound(f"no dead letter with id {str(pk)[:40]!r}")
        return int(pk)

    @staticmethod
    def _note(request) -> str:
        data = ResolutionInput(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        return data.validated_data["note"]
