"""RetryPolicy: per-node overrides, exponential backoff with a cap, bounded jitter, exhaustion."""

import random

import pytest

from resilience.retry import RetryPolicy

DEFAULTS = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=60.0, jitter=0.2)


@pytest.mark.parametrize("node_retry", [None, {}])
def test_for_node_without_retry_block_is_the_defaults(node_retry):
    assert RetryPolicy.for_node(node_retry, DEFAULTS) is DEFAULTS


def test_for_node_overrides_only_the_keys_given():
    policy = RetryPolicy.for_node({"max_attempts": 7, "backoff_base": 0.5}, DEFAULTS)

    assert policy == RetryPolicy(max_attempts=7, backoff_base=0.5, backoff_max=60.0, jitter=0.2)


def test_for_node_overrides_every_key_and_coerces_types():
    policy = RetryPolicy.for_node(
        {"max_attempts": "5", "backoff_base": 2, "backoff_max": 10, "jitter": 0}, DEFAULTS
    )

    assert policy == RetryPolicy(max_attempts=5, backoff_base=2.0, backoff_max=10.0, jitter=0.0)
    assert isinstance(policy.max_attempts, int)
    assert isinstance(policy.backoff_base, float)


def test_delay_doubles_with_each_attempt():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=1000.0, jitter=0.0)

    assert [policy.delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_delay_is_capped_by_backoff_max():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=0.0)

    assert [policy.delay(attempt) for attempt in (3, 4, 5, 30)] == [4.0, 5.0, 5.0, 5.0]


def test_delay_treats_attempt_zero_like_the_first():
    policy = RetryPolicy(backoff_base=3.0, jitter=0.0)

    assert policy.delay(0) == policy.delay(1) == 3.0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8])
def test_jitter_stays_within_its_fraction_of_the_capped_delay(attempt):
    policy = RetryPolicy(backoff_base=1.0, backoff_max=6.0, jitter=0.25)
    raw = min(6.0, 2 ** (attempt - 1))
    rng = random.Random(1234)

    delays = [policy.delay(attempt, rng=rng) for _ in range(500)]

    assert all(raw * 0.75 <= d <= raw * 1.25 for d in delays)
    # It really spreads, both ways, rather than always returning the raw delay.
    assert min(delays) < raw < max(delays)


def test_jitter_with_a_seeded_rng_is_reproducible():
    policy = RetryPolicy(backoff_base=1.0, jitter=0.5)

    first = [policy.delay(3, rng=random.Random(7)) for _ in range(3)]
    second = [policy.delay(3, rng=random.Random(7)) for _ in range(3)]

    assert first == second


def test_jitter_above_one_is_clamped_and_delay_never_negative():
    policy = RetryPolicy(backoff_base=2.0, jitter=5.0)
    rng = random.Random(99)

    delays = [policy.delay(1, rng=rng) for _ in range(500)]

    assert all(0.0 <= d <= 4.0 for d in delays)


@pytest.mark.parametrize(
    ("attempts_made", "exhausted"), [(0, False), (1, False), (2, False), (3, True), (4, True)]
)
def test_exhausted_once_max_attempts_were_made(attempts_made, exhausted):
    assert RetryPolicy(max_attempts=3).exhausted(attempts_made) is exhausted


@pytest.mark.parametrize("attempt", [1024, 1025, 10_000, 10**30])
def test_delay_of_a_huge_attempt_number_is_backoff_max_not_an_overflow(attempt):
    """2 ** 1024 used to overflow converting to float (a node could ask for unbounded attempts)."""
    policy = RetryPolicy(max_attempts=10**6, backoff_base=0.5, backoff_max=30.0, jitter=0)

    assert policy.delay(attempt) == 30.0


def test_delay_with_a_tiny_base_still_grows_until_capped():
    policy = RetryPolicy(backoff_base=1e-9, backoff_max=1e6, jitter=0)

    assert policy.delay(100) == policy.delay(10**9) > 0
