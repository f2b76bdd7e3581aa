"""Template helpers for the dashboard: JSON blocks that fold long values, durations, elapsed time."""

from datetime import datetime

from django import template
from django.utils import timezone

from workflows.dashboard.formatting import format_duration, pretty_json

register = template.Library()

PREVIEW_CHARS = 1200


@register.inclusion_tag("dashboard/_json.html")
def json_block(value, key: str = "", limit: int = PREVIEW_CHARS, omit: str = "") -> dict:
    """A value as indented JSON; past `limit` characters a preview, the whole value one click away.

    `key` names the block so a live refresh keeps it open once expanded; `omit` lists keys (comma
    separated) of a dict shown elsewhere on the page, such as a traceback."""
    if omit and isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in omit.split(",")}
    text = pretty_json(value)
    return {"text": text, "preview": text[:limit], "truncated": len(text) > limit, "key": key}


@register.filter
def duration(value) -> str:
    """A timedelta or a number of seconds, written in its natural unit."""
    return format_duration(value)


@register.simple_tag
def elapsed(start: datetime | None, end: datetime | None = None) -> str:
    """From `start` to `end`, or to now while `end` is unknown; '' before `start`."""
    if start is None:
        return ""
    return format_duration((end or timezone.now()) - start)
