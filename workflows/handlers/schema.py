"""Handler config schemas, checked at submit: required fields and JSON types, hand-written and
small. Pure logic, no Django.

A string holding a `{{ ... }}` template passes any type check: its value is known only when the
template is resolved, and the handler checks it again then.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.templating import EXPRESSION

# JSON types by the words an error message uses for them.
TYPES: dict[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "true or false": lambda v: isinstance(v, bool),
    "an object": lambda v: isinstance(v, Mapping),
    "a list": lambda v: isinstance(v, list),
}


class ConfigError(ValueError):
    """A node's config does not fit its handler's schema; the message names the field."""


@dataclass(frozen=True)
class Field:
    """One config key: its JSON type(s) (None: any), whether it is required, and an optional
    further check returning what is wrong with a value (or None)."""

    kinds: tuple[str, ...] | None = None
    required: bool = False
    check: Callable[[Any], str | None] | None = None

    def problem(self, value: Any) -> str | None:
        if is_templated(value):
            return None
        if self.kinds is not None and not any(TYPES[kind](value) for kind in self.kinds):
            return f"must be {' or '.join(self.kinds)}, got {_shown(value)}"
        return self.check(value) if self.check is not None else None


# Keys every built-in understands (`rate_limit` is checked by the DAG validation itself).
COMMON_FIELDS = {"simulate_failure": Field(("true or false",)), "rate_limit": Field()}


@dataclass(frozen=True)
class ConfigSchema:
    """The keys a handler's config may have; with `extra` False, any other key is refused (a
    typo such as `header` for `headers` is caught at submit instead of being ignored)."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    extra: bool = True
    # At least one of these keys must be present (call_llm: 'prompt' or 'messages').
    one_of: tuple[str, ...] = ()

    def check(self, config: Mapping) -> None:
        """ConfigError naming the first field that is missing, unknown or of the wrong type."""
        known = {**COMMON_FIELDS, **self.fields}
        for name, spec in known.items():
            if name not in config:
                if spec.required:
                    raise ConfigError(f"config '{name}' is required")
                continue
            problem = spec.problem(config[name])
            if problem:
                raise ConfigError(f"config '{name}' {problem}")
        if self.one_of and not any(name in config for name in self.one_of):
            raise ConfigError(f"config needs {' or '.join(repr(name) for name in self.one_of)}")
        if not self.extra:
            unknown = sorted(str(key) for key in config if key not in known)
            if unknown:
                raise ConfigError(f"config has unknown field(s) {unknown}; allowed: {sorted(known)}")


def is_templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value and EXPRESSION.search(value) is not None


def string_values(value: Any) -> str | None:
    """For header maps: every value a string."""
    bad = [key for key, item in value.items() if not isinstance(item, str)]
    return f"must map names to strings (not {bad[0]!r})" if bad else None


def status_codes(value: Any) -> str | None:
    """For lists of HTTP status codes."""
    bad = [
        code
        for code in value
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599
    ]
    return f"must list HTTP status codes from 100 to 599 (not {_shown(bad[0])})" if bad else None


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {_shown(value)}"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {list(choices)}, got {_shown(value)}"

    return check


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:45]}...{text[-10:]}"
