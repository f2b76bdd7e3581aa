"""`{{ node.path }}` templates in node configs: finding references and resolving them.

Pure logic, no Django. A string that is exactly one expression keeps the referenced value's type;
otherwise values are interpolated as text. Unresolved references stay as written unless strict.
"""

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

EXPRESSION = re.compile(r"\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}")
# List indexes in a path; ASCII digits only, so int() cannot fail on `--1` or `²`.
INDEX = re.compile(r"-?[0-9]+")
# No list a config can reach has an index this long; int() of more than 4,300 digits raises.
MAX_INDEX_DIGITS = 32
LONG_INDEX = re.compile(rf"-?[0-9]{{{MAX_INDEX_DIGITS + 1},}}")
PARAMS = "params"
# `{{ secrets.NAME }}` is revealed by the worker (workflows.secrets), never here: it always stays
# as written, even in strict mode, so no secret is ever stored in a resolved config.
SECRETS = "secrets"
MISSING = object()


class TemplateError(ValueError):
    """A template cannot be resolved (in strict mode, an unresolved reference); permanent,
    retrying will not help. `code` is the error code the failed task reports."""

    code = "invalid_template"


class ConfigTooLarge(TemplateError):
    """The resolved config would be larger than the limit it was resolved with."""

    code = "config_too_large"


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON, the measure of every size limit on configs and params."""
    return len(json.dumps(value, separators=(",", ":")))  # ASCII (ensure_ascii): characters are bytes


def iter_references(value: Any) -> Iterator[str]:
    """Every dotted path referenced anywhere in a config value (strings, dicts, lists), in order."""
    found: list[str] = []
    _collect_references(value, found)
    return iter(found)


def _collect_references(value: Any, found: list[str]) -> None:
    # Recursion into a list, not nested generators, and strings without `{{` skip the regex:
    # a stored 50,000-node definition is walked whenever a process compiles it.
    if isinstance(value, str):
        if "{{" in value:
            found += EXPRESSION.findall(value)
    elif isinstance(value, list):
        for item in value:
            _collect_references(item, found)
    elif isinstance(value, dict):  # configs are JSON; an ABC check would cost every number
        for key, item in value.items():
            _collect_references(key, found)
            _collect_references(item, found)


def referenced_roots(value: Any) -> set[str]:
    """The node ids (or `params`) a config value depends on."""
    return {path.split(".", 1)[0] for path in iter_references(value)}


def check_path(path: str) -> None:
    """TemplateError if a step of `path` is a list index longer than MAX_INDEX_DIGITS digits."""
    for part in path.split("."):
        if LONG_INDEX.fullmatch(part):
            raise _long_index(part, path)


def _long_index(part: str, path: str) -> TemplateError:
    def shown(text: str) -> str:
        return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"

    return TemplateError(
        f"list index {shown(part)} in {{{{ {shown(path)} }}}} has more than {MAX_INDEX_DIGITS} digits"
    )


def lookup(path: str, scope: Mapping[str, Any]) -> Any:
    """Follow `root.key.0.key` through dicts and lists; MISSING when any step is absent."""
    current: Any = scope
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part, MISSING)
        elif isinstance(current, list) and INDEX.fullmatch(part):
            if len(part) > MAX_INDEX_DIGITS and LONG_INDEX.fullmatch(part):
                raise _long_index(part, path)
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else MISSING
        else:
            return MISSING
        if current is MISSING:
            return MISSING
    return current


def as_text(value: Any) -> str:
    """Render a value inside a larger string: JSON for containers and null, str() otherwise."""
    if isinstance(value, (dict, list)) or value is None:
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def resolve(
    value: Any, scope: Mapping[str, Any], *, strict: bool = False, max_bytes: int | None = None
) -> Any:
    """Return a copy of `value` with every template resolved against `scope`; ConfigTooLarge if
    the copy takes more than `max_bytes` as JSON (templates can repeat a large value many times)."""
    resolved = _resolve(value, scope, strict)
    if max_bytes is not None:
        size = json_size(resolved)
        if size > max_bytes:
            raise ConfigTooLarge(f"the resolved config is {size} bytes, the limit is {max_bytes}")
    return resolved


def _resolve(value: Any, scope: Mapping[str, Any], strict: bool) -> Any:
    if isinstance(value, str):
        return _resolve_string(value, scope, strict)
    if isinstance(value, Mapping):
        # Keys are always text: a whole-expression key must not turn into a list or dict.
        return {
            interpolate(k, scope, strict=strict) if isinstance(k, str) else k: _resolve(v, scope, strict)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve(item, scope, strict) for item in value]
    return value


def _resolve_string(text: str, scope: Mapping[str, Any], strict: bool) -> Any:
    if "{{" not in text:
        return text
    whole = EXPRESSION.fullmatch(text.strip())
    if whole:
        found = lookup(whole.group(1), scope)
        if found is not MISSING:
            return found
        if strict and not whole.group(1).startswith(f"{SECRETS}."):
            raise TemplateError(f"unresolved reference {{{{ {whole.group(1)} }}}}")
        return text
    return interpolate(text, scope, strict=strict)


def interpolate(text: str, scope: Mapping[str, Any], *, strict: bool = False) -> str:
    """Render every reference in `text` as text, whatever the referenced value's type."""

    def substitute(match: re.Match) -> str:
        found = lookup(match.group(1), scope)
        if found is MISSING:
            if strict and not match.group(1).startswith(f"{SECRETS}."):
                raise TemplateError(f"unresolved reference {{{{ {match.group(1)} }}}}")
            return match.group(0)
        return as_text(found)

    return EXPRESSION.sub(substitute, text)
