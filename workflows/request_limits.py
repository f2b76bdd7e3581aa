"""Fixed-window limits counted in Redis and shared by every process: the API's per-user throttles
(`workflows.api.throttling`), failed token authentications per address
(`workflows.api.authentication`) and failed sign-ins per account and per address
(`workflows.login_limits`).

A rate reads like "120/min" or "5/5min". Its windows are fixed stretches of clock time,
[n * seconds, (n + 1) * seconds), and a window's number is part of its counter's key, so every
process agrees on when a window resets without asking anyone. A fixed window lets a client spend
up to twice its limit across a boundary; in exchange a request costs one INCR and the reset time
it is told is exact.

If Redis cannot be reached, the limits fail open: the request goes through, and the outage is
logged once (and its end once). Whatever the request does next meets the same Redis error, and
a limit must not turn a Redis outage into an API outage of its own.
"""

import functools
import hashlib
import ipaddress
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import structlog
from django.conf import settings

from resilience.rate_limit import parse_rate
from workflows.streams import get_streams

log = structlog.get_logger(__name__)

# Tests move time by replacing this.
clock = time.time

# A counter outlives its window by this much, so a request at the very end of a window never
# finds its counter gone.
EXPIRY_MARGIN_SECONDS = 5
MULTIPLE = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


@dataclass(frozen=True)
class Rate:
    """At most `limit` hits per window of `seconds`."""

    limit: int
    seconds: float

    def describe(self) -> str:
        return f"{self.limit} per {self.seconds:g} seconds"


@functools.lru_cache(maxsize=64)
def rate(spec: str | None) -> Rate | None:
    """'120/min', '5/5min', '20/s' -> a Rate; None, '' or '0' -> None (no limit). ValueError
    when the spec says neither."""
    if spec is None or str(spec).strip() in {"", "0"}:
        return None
    count, _, period = str(spec).partition("/")
    multiple = MULTIPLE.fullmatch(period)
    if multiple:  # '5min': parse_rate knows the unit, the multiple is ours
        times, unit = int(multiple[1]), multiple[2]
    else:
        times, unit = 1, period
    limit, seconds = parse_rate(f"{count}/{unit}")
    if not limit or not times:
        raise ValueError(f"rate must allow at least one hit in a window of at least 1 unit, got {spec!r}")
    return Rate(limit, seconds * times)


@dataclass(frozen=True)
class Limit:
    """One counter: `subject` (a user, an address, an account name) under `scope` at `rate`."""

    scope: str
    subject: str
    rate: Rate

    def window(self, now: float) -> tuple[int, float]:
        """The current window's number and the seconds until it ends."""
        number = int(now // self.rate.seconds)
        return number, (number + 1) * self.rate.seconds - now


@dataclass(frozen=True)
class Tally:
    """A counter's window as a request finds it."""

    limit: int
    count: int
    reset_seconds: float

    @property
    def exceeded(self) -> bool:
        """The hit just counted was one too many."""
        return self.count > self.limit

    @property
    def spent(self) -> bool:
        """No hit is left in this window."""
        return self.count >= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window resets, at least 1 (for Retry-After)."""
        return max(1, math.ceil(self.reset_seconds))


def hit(limits: Sequence[Limit]) -> list[Tally] | None:
    """Count one hit on each limit; the tallies after it, or None if Redis is unreachable."""
    if not limits:
        return []
    streams, now = get_streams(), clock()
    windows = [limit.window(now) for limit in limits]
    counters = [
        (
            streams.limit_key(limit.scope, limit.subject, number),
            math.ceil(limit.rate.seconds) + EXPIRY_MARGIN_SECONDS,
        )
        for limit, (number, _) in zip(limits, windows, strict=True)
    ]
    counts = _fail_open(lambda: streams.count_hits(counters))
    return _tallies(limits, windows, counts)


def peek(limits: Sequence[Limit]) -> list[Tally] | None:
    """The limits' tallies without counting a hit, or None if Redis is unreachable."""
    if not limits:
        return []
    streams, now = get_streams(), clock()
    windows = [limit.window(now) for limit in limits]
    keys = [
        streams.limit_key(limit.scope, limit.subject, number)
        for limit, (number, _) in zip(limits, windows, strict=True)
    ]
    counts = _fail_open(lambda: streams.hit_counts(keys))
    return _tallies(limits, windows, counts)


def _tallies(limits, windows, counts: list[int] | None) -> list[Tally] | None:
    if counts is None:
        return None
    return [
        Tally(limit.rate.limit, count, reset)
        for limit, (_, reset), count in zip(limits, windows, counts, strict=True)
    ]


class OutageLog:
    """Logs the first failure of an outage and the first success after it, nothing between."""

    def __init__(self):
        self.lock = threading.Lock()
        self.down = False

    def changed_to(self, down: bool) -> bool:
        with self.lock:
            changed, self.down = self.down != down, down
        return changed


outage_log = OutageLog()


def _fail_open(count):
    try:
        counts = count()
    except redis.RedisError as exc:
        if outage_log.changed_to(True):
            log.warning("request_limits_fail_open", reason="redis unreachable", error=str(exc))
        return None
    if outage_log.down and outage_log.changed_to(False):
        log.info("request_limits_counting_again")
    return counts


def user_subject(user) -> str:
    return f"user:{user.pk}"


def address_subject(request) -> str:
    """The client's address, for limits per address. IPv6 clients are counted per /64 network:
    one host commonly holds a whole /64."""
    address = client_address(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if parsed.version == 6:
        if parsed.ipv4_mapped:
            return f"addr:{parsed.ipv4_mapped}"
        return f"net:{ipaddress.ip_network(f'{parsed}/64', strict=False).network_address}"
    return f"addr:{parsed}"


def account_subject(username: str) -> str:
    """An account name as typed at a sign-in (anything up to the field's length): hashed, so any
    name makes a short, plain key."""
    return f"name:{hashlib.sha256(username.encode()).hexdigest()[:32]}"


def client_address(request) -> str:
    """REMOTE_ADDR. Behind reverse proxies, each must pass the client's address on: either the
    server in front of the API sets REMOTE_ADDR to it, or TRUSTED_PROXY_COUNT says how many
    proxies append to X-Forwarded-For, and the address the outermost of them saw is read from
    there (that many entries from the right: entries further left are whatever the client sent).
    Never X-Forwarded-For otherwise: any client can write it."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops and _is_address(forwarded[-hops]):
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
