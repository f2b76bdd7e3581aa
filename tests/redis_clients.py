"""The streams module caches its Redis clients, one set per process; a test that points REDIS_URL
elsewhere makes it connect anew with this."""

from workflows import streams


def forget_redis_clients() -> None:
    streams.redis_client.cache_clear()
    streams.blocking_redis_client.cache_clear()
    streams._streams_for.cache_clear()
