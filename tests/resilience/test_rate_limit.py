"""parse_rate: rate-limit specs such as '20/s' become (limit, window seconds)."""

import pytest

from resilience.rate_limit import parse_rate, stricter_rate


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("20/s", (20, 1.0)),
        ("100/m", (100, 60.0)),
        ("5/h", (5, 3600.0)),
        ("3/sec", (3, 1.0)),
        ("7/minute", (7, 60.0)),
        ("2/hour", (2, 3600.0)),
        (" 10 / s ", (10, 1.0)),
    ],
)
def test_parse_rate(spec, expected):
    assert parse_rate(spec) == expected


@pytest.mark.parametrize("spec", [None, ""])
def test_no_spec_means_unlimited(spec):
    assert parse_rate(spec) == (0, 1.0)


@pytest.mark.parametrize(
    "spec", ["20", "20/d", "x/s", "-1/s", "1.5/s", "/s", "20/", "20/S", "twenty per second"]
)
def test_bad_spec_is_rejected(spec):
    with pytest.raises(ValueError, match="rate limit must look like"):
        parse_rate(spec)


@pytest.mark.parametrize(
    ("node", "operator", "expected"),
    [
        (None, None, None),
        (None, "10/s", "10/s"),
        ("5/s", None, "5/s"),
        ("100/s", "10/s", "10/s"),  # a node cannot loosen the operator's limit
        ("2/s", "10/s", "2/s"),
        ("100/m", "10/s", "100/m"),  # 1.7/s is stricter than 10/s
        ("1000/m", "10/s", "10/s"),
        ("10/s", "10/s", "10/s"),
        ("3/h", "0/s", "3/h"),  # an operator's 0 means unlimited
    ],
)
def test_the_stricter_of_a_nodes_and_the_operators_limit_applies(node, operator, expected):
    assert stricter_rate(node, operator) == expected
