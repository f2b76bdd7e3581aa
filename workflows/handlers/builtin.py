"""Built-in handlers, compatible with the reference payloads in shared/payloads/."""

import hashlib
import operator
from typing import Any
from urllib.parse import urlsplit

from workflows.handlers import HandlerError, TaskContext, handler

DECISION_OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
}


def fail_if_simulated(config: dict, context: TaskContext) -> None:
    """`simulate_failure: true` makes any built-in fail, for demos and tests."""
    if config.get("simulate_failure") is True:
        raise HandlerError(f"simulated failure in {context.node_id!r}", code="simulated_failure")


@handler("input")
def input_handler(config: dict, context: TaskContext) -> dict:
    """Start of a workflow: its config, overlaid with the trigger params."""
    fail_if_simulated(config, context)
    return {**config, **context.params}


@handler("output", upstream=True)
def output_handler(config: dict, context: TaskContext) -> dict:
    """End of a workflow: its config plus the outputs of the nodes it depends on."""
    fail_if_simulated(config, context)
    return {**config, "inputs": context.upstream}


@handler("decision")
def decision_handler(config: dict, context: TaskContext) -> dict:
    """Compare `value_a` and `value_b` with `operator`; children branch on `{{ node.result }}`."""
    fail_if_simulated(config, context)
    symbol = config.get("operator", "==")
    compare = DECISION_OPERATORS.get(symbol)
    if compare is None:
        raise HandlerError(
            f"unknown operator {symbol!r}; use one of {sorted(DECISION_OPERATORS)}",
            code="invalid_config",
            permanent=True,
        )
    value_a, value_b = config.get("value_a"), config.get("value_b")
    try:
        result = bool(compare(value_a, value_b))
    except TypeError as exc:
        raise HandlerError(f"cannot compare: {exc}", code="invalid_config", permanent=True) from None
    return {"result": result, "value_a": value_a, "operator": symbol, "value_b": value_b}


@handler("delay")
def delay_handler(config: dict, context: TaskContext) -> dict:
    """Wait `seconds` (wakes early on timeout, cancel or shutdown): for demos of those paths."""
    fail_if_simulated(config, context)
    seconds = config.get("seconds", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise HandlerError(
            f"'seconds' must be a number >= 0, got {seconds!r}", code="invalid_config", permanent=True
        )
    context.sleep(float(seconds))
    return {"slept": seconds}


@handler("call_external_service")
def call_external_service(config: dict, context: TaskContext) -> dict:
    """An HTTP call; offline (the default) it answers with a deterministic mock response."""
    fail_if_simulated(config, context)
    url = config.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in {"http", "https"}:
        raise HandlerError(
            f"'url' must be an http(s) URL, got {url!r}", code="invalid_config", permanent=True
        )
    method = str(config.get("method", "GET")).upper()
    data = {"url": url, "method": method, "mock": True, "items": [], "request_id": _digest(url, context)}
    return {"status_code": 200, "data": data, "response": data, "url": url, "method": method}


@handler("call_llm")
def call_llm(config: dict, context: TaskContext) -> dict:
    """An LLM completion; offline (the default) a deterministic provider answers."""
    fail_if_simulated(config, context)
    prompt = config.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise HandlerError("'prompt' must be a non-empty string", code="invalid_config", permanent=True)
    model = str(config.get("model", "offline"))
    text = f"[offline {model}] {_digest(prompt, context)}: {prompt[:200]}"
    tokens = len(prompt.split())
    return {
        "response": text,
        "result": text,
        "model": model,
        "usage": {"prompt_tokens": tokens, "completion_tokens": len(text.split())},
    }


def _digest(text: Any, context: TaskContext) -> str:
    return hashlib.sha256(f"{context.idempotency_key}|{text}".encode()).hexdigest()[:12]
