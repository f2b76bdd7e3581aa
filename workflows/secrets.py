"""`{{ secrets.NAME }}` in node configs: revealed in the worker, just before the handler runs, and
scrubbed from what the task reports. Pure logic, no Django.

The stored config (TaskRun, dead letter, API, dashboard) keeps the reference as written; only the
handler sees the value. The worker removes each revealed value, and its URL- and JSON-escaped
spellings, from the task's output and error before they leave it. A value the handler transforms
(base64 in a Basic auth header echoed back, say) is beyond what scrubbing can recognise.
"""

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from workflows.templating import SECRETS

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REFERENCE = re.compile(rf"\{{\{{\s*{SECRETS}\.({NAME.pattern})\s*\}}\}}")
REDACTED = "[secret]"


class SecretMissing(KeyError):
    """A config references a secret this worker does not have (no WORKFLOW_SECRET_<NAME>)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"secret {self.name!r} is not configured on this worker (WORKFLOW_SECRET_{self.name})"


def reveal(config: Any, secrets: Mapping[str, str]) -> tuple[Any, list[str]]:
    """A copy of `config` with every `{{ secrets.NAME }}` replaced by its value, and the values
    used; SecretMissing for an unknown name. A config with no reference is returned as is."""
    used: list[str] = []

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in secrets:
            raise SecretMissing(name)
        value = secrets[name]
        if value not in used:
            used.append(value)
        return value

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return REFERENCE.sub(substitute, value) if f"{SECRETS}." in value else value
        if isinstance(value, Mapping):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    if not _mentions_secrets(config):
        return config, used
    return walk(config), used


def scrub(value: Any, secrets: list[str]) -> Any:
    """A copy of `value` (strings, dicts and their keys, lists) with every spelling of every
    secret replaced by REDACTED."""
    spellings = sorted({s for secret in secrets if secret for s in _spellings(secret)}, key=len, reverse=True)
    if not spellings:
        return value
    pattern = re.compile("|".join(re.escape(s) for s in spellings))

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(REDACTED, item)
        if isinstance(item, Mapping):
            return {walk(key): walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


def _spellings(secret: str) -> set[str]:
    """The value as written and as it appears once URL- or JSON-escaped."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _mentions_secrets(value: Any) -> bool:
    if isinstance(value, str):
        return f"{SECRETS}." in value and REFERENCE.search(value) is not None
    if isinstance(value, Mapping):
        return any(_mentions_secrets(item) for item in value.values())
    if isinstance(value, list):
        return any(_mentions_secrets(item) for item in value)
    return False
