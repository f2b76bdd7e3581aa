"""Token authentication with a short per-process cache.

Every API call authenticates, and the token lookup was the most frequent query the API ran
(clients poll status). A revoked token or deactivated user keeps working for at most
TOKEN_CACHE_SECONDS in each API process.
"""

import time

from rest_framework.authentication import TokenAuthentication

TOKEN_CACHE_SECONDS = 5.0
MAX_CACHED_TOKENS = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication, remembering a valid key for a few seconds."""

    cache: dict = {}

    def authenticate_credentials(self, key):
        hit = self.cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        found = super().authenticate_credentials(key)
        if len(self.cache) >= MAX_CACHED_TOKENS:
            self.cache.clear()
        self.cache[key] = (found, now + TOKEN_CACHE_SECONDS)
        return found
