"""Handler config schemas: required fields, JSON types, unknown keys, templated values."""

import pytest

from workflows.handlers.schema import ConfigError, ConfigSchema, Field, positive

SCHEMA = ConfigSchema(
    {
        "url": Field(("a string",), required=True),
        "timeout": Field(("a number",), check=positive),
        "flag": Field(("true or false",)),
        "anything": Field(),
    },
    extra=False,
)


@pytest.mark.parametrize(
    "config",
    [
        {"url": "x"},
        {"url": "x", "timeout": 1.5, "flag": False, "anything": [1, {"a": None}]},
        {"url": "{{ start.url }}", "timeout": "{{ params.t }}"},
        {"url": "x", "simulate_failure": True, "rate_limit": "5/s"},
    ],
)
def test_configs_that_fit(config):
    SCHEMA.check(config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config 'url' is required"),
        ({"url": 1}, "config 'url' must be a string, got 1"),
        ({"url": "x", "timeout": True}, "config 'timeout' must be a number, got True"),
        ({"url": "x", "timeout": 0}, "config 'timeout' must be greater than 0"),
        ({"url": "x", "timeout": "soon"}, "config 'timeout' must be a number"),
        ({"url": "x", "flag": "yes"}, "config 'flag' must be true or false"),
        ({"url": "x", "urll": "y"}, "config has unknown field(s) ['urll']"),
        ({"url": "x", "simulate_failure": 1}, "config 'simulate_failure' must be true or false"),
    ],
)
def test_configs_that_do_not_fit_name_the_field(config, message):
    with pytest.raises(ConfigError) as caught:
        SCHEMA.check(config)

    assert str(caught.value).startswith(message)


def test_one_of_and_extra_keys():
    schema = ConfigSchema(
        {"prompt": Field(("a string",)), "messages": Field(("a list",))}, one_of=("prompt", "messages")
    )

    schema.check({"messages": [], "whatever": 1})
    with pytest.raises(ConfigError, match="config needs 'prompt' or 'messages'"):
        schema.check({"whatever": 1})
