"""Forms of the dashboard: trigger params typed as JSON, and the executions list's filters."""

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from workflows.models import Execution
from workflows.services import Forbidden, ServiceError

HEX_DIGITS = re.compile(r"[0-9a-f]{1,32}")


class ParamsForm(forms.Form):
    """Params for a new run, typed as a JSON object."""

    params = forms.CharField(
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        help_text="A JSON object; nodes read it as {{ params.key }}.",
    )

    def clean_params(self) -> dict:
        raw = self.cleaned_data["params"].strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(
                f'Params must be a JSON object like {{"key": 1}}, not a {_kind(value)}.'
            )
        return value

    def start(self, start: Callable[[dict], Execution]) -> Execution | None:
        """The execution `start` makes from valid params; None with the reason shown on the form
        when the params are invalid or the service refuses them."""
        if not self.is_valid():
            return None
        try:
            return start(self.cleaned_data["params"])
        except Forbidden:
            raise  # the 403 page, not a form error
        except ServiceError as exc:
            self.add_error("params", exc.message)
            return None


def _kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


class ExecutionFilterForm(forms.Form):
    """?status=&workflow=&id=&created_from=&created_to= on the executions list."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Execution.Status.choices])
    workflow = forms.UUIDField(required=False, widget=forms.HiddenInput)
    id = forms.CharField(
        required=False,
        label="Execution id",
        widget=forms.TextInput(attrs={"placeholder": "id or its first characters", "spellcheck": "false"}),
    )
    created_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean_id(self) -> str:
        """Hex digits of a full id or a prefix, dashes and case ignored."""
        digits = self.cleaned_data["id"].strip().lower().replace("-", "")
        if digits and not HEX_DIGITS.fullmatch(digits):
            raise forms.ValidationError("An execution id has up to 32 hex digits (0-9, a-f).")
        return digits

    def filter(self, executions: QuerySet[Execution]) -> QuerySet[Execution]:
        """The executions matching the valid filters (invalid ones are ignored and shown)."""
        self.is_valid()
        data = self.cleaned_data  # the fields that passed validation only
        if data.get("status"):
            executions = executions.filter(status=data["status"])
        if data.get("workflow"):
            executions = executions.filter(workflow_id=data["workflow"])
        if data.get("id"):
            # A prefix is a range of ids: the primary key index answers it on any database.
            digits = data["id"]
            executions = executions.filter(
                pk__gte=uuid.UUID(digits.ljust(32, "0")), pk__lte=uuid.UUID(digits.ljust(32, "f"))
            )
        if data.get("created_from"):
            executions = executions.filter(created_at__gte=_day_start(data["created_from"]))
        if data.get("created_to"):
            executions = executions.filter(created_at__lt=_day_start(data["created_to"]) + timedelta(days=1))
        return executions


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
