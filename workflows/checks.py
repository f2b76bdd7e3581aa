"""System checks for settings invariants: fail at start-up, not in the middle of a run."""

from django.conf import settings
from django.core.checks import Error, register
from rest_framework.settings import api_settings

from resilience.rate_limit import parse_rate
from workflows import request_limits
from workflows.outbound import Allowlist


@register()
def engine_settings_check(app_configs, **kwargs) -> list[Error]:
    errors = []
    for handler, spec in settings.RATE_LIMITS.items():
        try:
            parse_rate(spec)
        except ValueError as exc:
            errors.append(Error(f"RATE_LIMITS for {handler!r}: {exc}", id="workflows.E001"))
    if settings.VISIBILITY_TIMEOUT_SECONDS <= 0:
        errors.append(Error("VISIBILITY_TIMEOUT_SECONDS must be positive", id="workflows.E002"))
    if settings.RETRY_MAX_ATTEMPTS < 1:
        errors.append(Error("RETRY_MAX_ATTEMPTS must be at least 1", id="workflows.E003"))
    if settings.MAX_DELIVERIES < 1:
        errors.append(Error("MAX_DELIVERIES must be at least 1", id="workflows.E004"))
    if settings.WORKER_CONCURRENCY < 1 or settings.ORCHESTRATOR_BATCH_SIZE < 1:
        errors.append(
            Error("WORKER_CONCURRENCY and ORCHESTRATOR_BATCH_SIZE must be at least 1", id="workflows.E005")
        )
    errors += request_limit_errors()
    return errors


def request_limit_errors() -> list[Error]:
    """The API throttles' and sign-in limits' rates parse; the idempotency TTL and the proxy count
    make sense."""
    rates = {
        **{f"THROTTLE_{scope.upper()}": spec for scope, spec in api_settings.DEFAULT_THROTTLE_RATES.items()},
        "AUTH_FAILURES_PER_ADDRESS": settings.AUTH_FAILURES_PER_ADDRESS,
        "LOGIN_FAILURES_PER_USER": settings.LOGIN_FAILURES_PER_USER,
        "LOGIN_FAILURES_PER_ADDRESS": settings.LOGIN_FAILURES_PER_ADDRESS,
    }
    errors = []
    for name, spec in rates.items():
        try:
            request_limits.rate(spec)
        except ValueError as exc:
            errors.append(
                Error(f"{name}: {exc}", hint="e.g. 600/min, 5/5min; 0: no limit", id="workflows.E006")
            )
    if settings.IDEMPOTENCY_TTL_HOURS <= 0:
        errors.append(Error("IDEMPOTENCY_TTL_HOURS must be positive", id="workflows.E007"))
    if settings.TRUSTED_PROXY_COUNT < 0:
        errors.append(Error("TRUSTED_PROXY_COUNT must be 0 or more", id="workflows.E008"))
    return errors


@register()
def handler_settings_check(app_configs, **kwargs) -> list[Error]:
    """The outbound allowlist parses, and the LLM endpoint is an http(s) URL."""
    errors = []
    try:
        Allowlist.parse(settings.OUTBOUND_ALLOWLIST)
    except ValueError as exc:
        errors.append(Error(f"OUTBOUND_ALLOWLIST: {exc}", id="workflows.E020"))
    if settings.LLM_BASE_URL and not settings.LLM_BASE_URL.lower().startswith(("http://", "https://")):
        errors.append(Error("LLM_BASE_URL must be an http or https URL", id="workflows.E021"))
    if settings.OUTBOUND_MAX_REDIRECTS < 0 or settings.OUTBOUND_MAX_RESPONSE_BYTES < 1:
        errors.append(
            Error(
                "OUTBOUND_MAX_REDIRECTS must be >= 0 and OUTBOUND_MAX_RESPONSE_BYTES >= 1",
                id="workflows.E022",
            )
        )
    return errors
