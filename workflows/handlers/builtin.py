"""Built-in handlers, compatible with the reference payloads in tests/reference_payloads/.

`call_external_service` and `call_llm` go out through the guarded client (workflows.outbound);
offline (HANDLERS_OFFLINE, or `"mock": true` in a node's config) they answer with deterministic
responses shaped like the real ones. Every config is checked against its handler's schema at
submit, and again here once its templates are resolved. docs/handlers.md documents them all.
"""

import hashlib
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from workflows import outbound
from workflows.conditions import COMPARISONS
from workflows.dag import SUBWORKFLOW
from workflows.handlers import HandlerError, TaskContext, handler
from workflows.handlers.schema import (
    ConfigError,
    ConfigSchema,
    Field,
    one_of,
    positive,
    status_codes,
    string_values,
)

# The operators of conditions, so a decision and a condition compare alike, plus `contains`.
DECISION_OPERATORS = {**COMPARISONS, "contains": lambda a, b: b in a}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ROLES = ("system", "user", "assistant", "tool", "developer")


def _http_url(value: str) -> str | None:
    return None if urlsplit(value).scheme.lower() in {"http", "https"} else "must be an http or https URL"


def _http_method(value: str) -> str | None:
    return one_of(*HTTP_METHODS)(value.upper())


def _chat_messages(value: list) -> str | None:
    for message in value:
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            return "must be a list of {'role': ..., 'content': ...} objects with string values"
        if message["role"] not in ROLES:
            return f"has a message with role {message['role']!r}; roles are {list(ROLES)}"
    return None if value else "must not be empty"


NUMBER = ("a number",)
INPUT_SCHEMA = ConfigSchema()
OUTPUT_SCHEMA = ConfigSchema()
DECISION_SCHEMA = ConfigSchema(
    {
        "operator": Field(("a string",), check=one_of(*DECISION_OPERATORS)),
        "value_a": Field(),
        "value_b": Field(),
    }
)
DELAY_SCHEMA = ConfigSchema({"seconds": Field(NUMBER, check=lambda v: None if v >= 0 else "must be >= 0")})
TRANSFORM_SCHEMA = ConfigSchema({"output": Field(required=True)}, extra=False)
SUBWORKFLOW_SCHEMA = ConfigSchema(
    {"workflow": Field(("a string",), required=True), "params": Field(("an object",))}, extra=False
)
HTTP_SCHEMA = ConfigSchema(
    {
        "url": Field(("a string",), required=True, check=_http_url),
        "method": Field(("a string",), check=_http_method),
        "headers": Field(("an object",), check=string_values),
        "params": Field(("an object",)),
        "json": Field(),
        "body": Field(("a string",)),
        "timeout": Field(NUMBER, check=positive),
        "expected_status": Field(("a list",), check=status_codes),
        "retry_on_status": Field(("a list",), check=status_codes),
        "max_response_bytes": Field(("an integer",), check=positive),
        "follow_redirects": Field(("true or false",)),
        "idempotency_key": Field(("true or false",)),
        "mock": Field(("true or false",)),
    },
    extra=False,
)
LLM_SCHEMA = ConfigSchema(
    {
        "prompt": Field(("a string",), check=lambda v: None if v else "must not be empty"),
        "messages": Field(("a list",), check=_chat_messages),
        "system": Field(("a string",)),
        "model": Field(("a string",)),
        "temperature": Field(NUMBER, check=lambda v: None if 0 <= v <= 2 else "must be from 0 to 2"),
        "max_tokens": Field(("an integer",), check=positive),
        "timeout": Field(NUMBER, check=positive),
        "mock": Field(("true or false",)),
    },
    extra=False,
    one_of=("prompt", "messages"),
)


def checked(config: dict, schema: ConfigSchema) -> dict:
    """The resolved config, checked again: a template may have produced a value of the wrong type."""
    try:
        schema.check(config)
    except ConfigError as exc:
        raise HandlerError(str(exc), code="invalid_config", permanent=True) from None
    return config


def fail_if_simulated(config: dict, context: TaskContext) -> None:
    """`simulate_failure: true` makes any built-in fail, for demos and tests."""
    if config.get("simulate_failure") is True:
        raise HandlerError(f"simulated failure in {context.node_id!r}", code="simulated_failure")


def offline(config: dict) -> bool:
    """No outgoing call: HANDLERS_OFFLINE (demos, `make run`) or `"mock": true` on the node."""
    return settings.HANDLERS_OFFLINE or config.get("mock") is True


@handler("input", config_schema=INPUT_SCHEMA, circuit=None)
def input_handler(config: dict, context: TaskContext) -> dict:
    """Start of a workflow: its config, overlaid with the trigger params."""
    fail_if_simulated(config, context)
    return {**config, **context.params}


@handler("output", upstream=True, config_schema=OUTPUT_SCHEMA, circuit=None)
def output_handler(config: dict, context: TaskContext) -> dict:
    """End of a workflow: its config plus the outputs of the nodes it depends on."""
    fail_if_simulated(config, context)
    return {**config, "inputs": context.upstream}


@handler("decision", config_schema=DECISION_SCHEMA, circuit=None)
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


@handler("transform", config_schema=TRANSFORM_SCHEMA, circuit=None)
def transform_handler(config: dict, context: TaskContext) -> Any:
    """Reshape upstream outputs without code: the output is `output` with its templates resolved."""
    fail_if_simulated(config, context)
    return config["output"]


@handler(SUBWORKFLOW, config_schema=SUBWORKFLOW_SCHEMA, circuit=None)
def subworkflow_handler(config: dict, context: TaskContext) -> Any:
    """Registered for its name and config schema: the engine runs these nodes itself
    (workflows/subworkflows.py) and never sends one to a worker. A worker handed one anyway (a
    message forged onto the stream) refuses it for good."""
    raise HandlerError(
        "sub-workflow nodes are run by the orchestrator, not by a worker", code="invalid_task", permanent=True
    )


@handler("delay", config_schema=DELAY_SCHEMA, circuit=None)
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


def url_host(config: dict) -> str | None:
    """call_external_service's circuit: one per target host (none offline: nothing is called)."""
    url = config.get("url")
    if offline(config) or not isinstance(url, str):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


@handler("call_external_service", config_schema=HTTP_SCHEMA, circuit=url_host)
def call_external_service(config: dict, context: TaskContext) -> dict:
    """One HTTP request through the guarded client; 429, 5xx, timeouts and connection errors are
    retried, other unexpected statuses fail for good."""
    fail_if_simulated(config, context)
    checked(config, HTTP_SCHEMA)
    url = config["url"]
    method = config.get("method", "GET").upper()
    if offline(config):
        data = {"url": url, "method": method, "mock": True, "items": [], "request_id": _digest(url, context)}
        return {
            "status_code": 200,
            "headers": {"content-type": "application/json"},
            "data": data,
            "response": data,  # what the reference payloads read
            "url": url,
            "method": method,
            "elapsed_ms": 0.0,
            "offline": True,
        }
    if "{{" in url:
        raise HandlerError(f"'url' still holds a template: {url!r}", code="invalid_config", permanent=True)
    if "json" in config and "body" in config:
        raise HandlerError("give 'json' or 'body', not both", code="invalid_config", permanent=True)
    headers = dict(config.get("headers") or {})
    if config.get("idempotency_key", True) and "idempotency-key" not in {k.lower() for k in headers}:
        headers["Idempotency-Key"] = context.idempotency_key
    fetched = outbound.fetch(
        method,
        url,
        headers=headers,
        params=config.get("params"),
        json=config.get("json"),
        content=config.get("body"),
        timeout=config.get("timeout"),
        max_bytes=config.get("max_response_bytes"),
        follow_redirects=config.get("follow_redirects", True),
        context=context,
    )
    expected = config.get("expected_status")
    if not (fetched.status_code in expected if expected else 200 <= fetched.status_code < 300):
        raise outbound.status_failure(fetched, method=method, retryable=config.get("retry_on_status") or ())
    return {
        "status_code": fetched.status_code,
        "headers": fetched.headers_dict(),
        "data": fetched.data(),
        "url": fetched.url,
        "method": method,
        "elapsed_ms": fetched.elapsed_ms,
    }


def llm_host(config: dict) -> str | None:
    """call_llm's circuit: one per endpoint host (none offline)."""
    if offline(config) or not settings.LLM_BASE_URL:
        return None
    return urlsplit(settings.LLM_BASE_URL).hostname


@handler("call_llm", config_schema=LLM_SCHEMA, circuit=llm_host)
def call_llm(config: dict, context: TaskContext) -> dict:
    """A chat completion from the OpenAI-compatible endpoint at LLM_BASE_URL; with none configured,
    or offline, a deterministic offline provider answers (`"offline": true`)."""
    fail_if_simulated(config, context)
    checked(config, LLM_SCHEMA)
    messages = config.get("messages") or []
    if config.get("prompt"):
        messages = [*messages, {"role": "user", "content": config["prompt"]}]
    if config.get("system"):
        messages = [{"role": "system", "content": config["system"]}, *messages]
    model = config.get("model") or settings.LLM_MODEL
    if offline(config) or not settings.LLM_BASE_URL:
        return _offline_completion(messages, model or "offline", context)
    if not model:
        raise HandlerError(
            "no model: set 'model' in the config or LLM_MODEL", code="invalid_config", permanent=True
        )
    headers = {}
    if settings.LLM_API_KEY:
        context.redact(settings.LLM_API_KEY)
        headers["Authorization"] = f"Bearer {settings.LLM_API_KEY}"
    request = {"model": model, "messages": messages}
    request.update({key: config[key] for key in ("temperature", "max_tokens") if key in config})
    fetched = outbound.fetch(
        "POST",
        settings.LLM_BASE_URL.rstrip("/") + "/chat/completions",
        headers=headers,
        json=request,
        timeout=config.get("timeout"),
        context=context,
    )
    if not 200 <= fetched.status_code < 300:
        raise outbound.status_failure(fetched, method="POST")
    answer = fetched.data()
    try:
        choice = answer["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise HandlerError(
            f"the LLM endpoint answered {fetched.status_code} without choices[0].message: {str(answer)[:200]}",
            code="llm_bad_response",
        ) from None
    return {
        "response": text,
        "result": text,  # what the reference payloads read
        "model": answer.get("model") or model,
        "usage": answer.get("usage") or {},
        "finish_reason": choice.get("finish_reason"),
    }


def _offline_completion(messages: list[dict], model: str, context: TaskContext) -> dict:
    prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), messages[-1]["content"])
    text = f"[offline {model}] {_digest(prompt, context)}: {prompt[:200]}"
    prompt_tokens = sum(len(m["content"].split()) for m in messages)
    completion_tokens = len(text.split())
    return {
        "response": text,
        "result": text,
        "model": model,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "finish_reason": "stop",
        "offline": True,
    }


def _digest(text: Any, context: TaskContext) -> str:
    return hashlib.sha256(f"{context.idempotency_key}|{text}".encode()).hexdigest()[:12]
