"""Per-user API throttles, shared by every API process: DRF throttles whose counters live in Redis
(`workflows.request_limits`), one script call per throttled request and no other round trip.

Scopes (rates in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], from THROTTLE_* settings; a scope
without a rate is not throttled):

- `reads`: every GET (and HEAD, OPTIONS);
- `long_poll`: a GET that waits (`?wait=S` on the status endpoint), counted here instead of `reads`;
- `submit` and `trigger`: the writes whose view says so (`throttle_scope`); other writes are not
  throttled.

A user is counted by id, an anonymous caller (open endpoints) by address. Every answer of a
throttled scope carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds until
the window resets; IETF draft names); past the limit the answer is 429 `throttled` with
Retry-After.
"""

from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from workflows import request_limits
from workflows.request_limits import Limit, Rate, Tally

SUBMIT = "submit"
TRIGGER = "trigger"
READS = "reads"
LONG_POLL = "long_poll"


class RateLimited(Throttled):
    """429 `throttled` for a spent limit: Retry-After, and details naming the scope and its rate."""

    def __init__(self, *, what: str, scope: str, rate: Rate, tally: Tally):
        super().__init__(wait=tally.retry_after, detail=f"{what}: the limit is {rate.describe()}.")
        self.details = {
            "scope": scope,
            "limit": rate.limit,
            "window_seconds": rate.seconds,
            "retry_after": tally.retry_after,
        }


class ScopedRedisThrottle(BaseThrottle):
    """Counts the request under its scope for its user, in Redis; refuses it past the scope's rate."""

    def allow_request(self, request, view) -> bool:
        scope = throttle_scope(request, view)
        rate = request_limits.rate(api_settings.DEFAULT_THROTTLE_RATES.get(scope)) if scope else None
        if rate is None:
            return True
        if request.user is not None and request.user.is_authenticated:
            subject = request_limits.user_subject(request.user)
        else:
            subject = request_limits.address_subject(request)
        tallies = request_limits.hit([Limit(scope, subject, rate)])
        if tallies is None:  # Redis unreachable: fail open
            return True
        (tally,) = tallies
        # DRF copies the view's `headers` onto whatever answer the request gets, a 429 included.
        view.headers.update(
            {
                "RateLimit-Limit": str(rate.limit),
                "RateLimit-Remaining": str(tally.remaining),
                "RateLimit-Reset": str(tally.retry_after),
            }
        )
        if tally.exceeded:
            # Raised here rather than returning False, so the error can say which limit it was.
            raise RateLimited(what=f"too many {scope} requests", scope=scope, rate=rate, tally=tally)
        return True


def throttle_scope(request, view) -> str | None:
    """`reads` for a GET, `long_poll` for one that waits, else the view's `throttle_scope`."""
    if request.method in SAFE_METHODS:
        return LONG_POLL if getattr(view, "long_polls", False) and _waits(request) else READS
    return getattr(view, "throttle_scope", None)


def _waits(request) -> bool:
    try:
        return float(request.query_params.get("wait") or 0) > 0
    except ValueError:
        return False  # the view answers 400; as a read
