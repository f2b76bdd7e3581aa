"""Rate-limit specs like '20/s' for handlers; enforced by the worker through Redis. Pure logic."""

import functools


def parse_rate(spec: str | None) -> tuple[int, float]:
    """'20/s', '100/m', '5/h' -> (limit, window seconds); (0, 1) means unlimited."""
    if not spec:
        return 0, 1.0
    count, _, unit = str(spec).partition("/")
    windows = {
        "s": 1.0,
        "sec": 1.0,
        "second": 1.0,
        "m": 60.0,
        "min": 60.0,
        "minute": 60.0,
        "h": 3600.0,
        "hour": 3600.0,
    }
    if not count.strip().isdigit() or unit.strip() not in windows:
        raise ValueError(f"rate limit must look like '20/s', '100/m' or '5/h', got {spec!r}")
    return int(count), windows[unit.strip()]


@functools.lru_cache(maxsize=256)  # once per ready task on the orchestrator's hot path
def stricter_rate(node_spec: str | None, operator_spec: str | None) -> str | None:
    """The limit a node's tasks run under: a node's `rate_limit` may tighten the operator's
    RATE_LIMITS for its handler, never loosen it; the stricter is the one allowing fewer calls
    per second. Either may be absent (None or unlimited)."""
    node_limit, node_window = parse_rate(node_spec)
    operator_limit, operator_window = parse_rate(operator_spec)
    if not node_limit:
        return operator_spec if operator_limit else None
    if not operator_limit:
        return node_spec
    return node_spec if node_limit / node_window < operator_limit / operator_window else operator_spec
