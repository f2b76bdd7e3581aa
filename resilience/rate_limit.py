"""Rate-limit specs like '20/s' for handlers; enforced by the worker through Redis. Pure logic."""


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
