"""Token authentication with a short per-process cache, and a bound on failed attempts per address.

Every API call authenticates, and the token lookup was the most frequent query the API ran
(clients poll status). A revoked token or deactivated user keeps working for at most
TOKEN_CACHE_SECONDS in each API process.

Failed token authentications are counted per client address (AUTH_FAILURES_PER_ADDRESS, in
Redis, shared by every API process). Past the limit, a request from that address whose token is
not one this process verified in the last TOKEN_CACHE_SECONDS is refused with 429 and Retry-After
before its token is looked up, so guessing tokens is bounded. A cached token needs no Redis: no
guessed token is in the cache, and the hot path keeps its one round trip. The address is
REMOTE_ADDR (see `request_limits.client_address` for proxies).
"""

import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from workflows import request_limits
from workflows.api.throttling import RateLimited
from workflows.request_limits import Limit

TOKEN_CACHE_SECONDS = 5.0
MAX_CACHED_TOKENS = 10_000
AUTH_FAILURES = "auth_failures"


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication, remembering a valid key for a few seconds, and refusing an
    address with too many failed attempts."""

    cache: dict = {}

    def authenticate(self, request):
        # DRF makes one authenticator per request: this one is the request's.
        self.request = request
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            failures = self.failure_limit()
            if failures:
                request_limits.hit([failures])
            raise

    def authenticate_credentials(self, key):
        hit = self.cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        self.refuse_if_too_many_failures()
        found = super().authenticate_credentials(key)
        if len(self.cache) >= MAX_CACHED_TOKENS:
            self.cache.clear()
        self.cache[key] = (found, now + TOKEN_CACHE_SECONDS)
        return found

    def failure_limit(self) -> Limit | None:
        """This request's address under AUTH_FAILURES_PER_ADDRESS, if it has a rate."""
        rate = request_limits.rate(settings.AUTH_FAILURES_PER_ADDRESS)
        return Limit(AUTH_FAILURES, request_limits.address_subject(self.request), rate) if rate else None

    def refuse_if_too_many_failures(self) -> None:
        failures = self.failure_limit()
        tallies = request_limits.peek([failures]) if failures else None  # None also: Redis unreachable
        if tallies and tallies[0].spent:
            raise RateLimited(
                what="too many failed authentications from this address",
                scope=AUTH_FAILURES,
                rate=failures.rate,
                tally=tallies[0],
            )
