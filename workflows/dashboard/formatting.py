"""How the dashboard writes values for people: JSON indented, durations in their natural unit."""

import json
from datetime import timedelta


def pretty_json(value) -> str:
    """Indented JSON, non-ASCII kept readable; anything JSON cannot hold is written as text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def format_duration(value: timedelta | float | None) -> str:
    """'850 ms', '3.2 s', '2 min 05 s', '1 h 02 min', '24 h'; '' for None."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
