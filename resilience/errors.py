"""Error classification: every failed attempt is recorded as data with a category and a code.

Categories: transient, validation, resource, infrastructure, handler, timeout, circuit_open,
poison, unknown. Validation errors are permanent: retrying cannot help, so retries are skipped.
"""

import hashlib
import socket
import traceback
from dataclasses import dataclass

PERMANENT_CATEGORIES = frozenset({"validation", "poison"})


class ClassifiedError(Exception):
    """Raised with an explicit category (handlers may raise it, or HandlerError).
    `retry_after_seconds`: the next attempt must not start sooner (a 429's Retry-After)."""

    category = "handler"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        category: str | None = None,
        retry_after_seconds: float | None = None,
    ):
        super().__init__(message)
        self.code = code or self.__class__.__name__
        if category:
            self.category = category
        self.retry_after_seconds = retry_after_seconds


class TaskTimeout(ClassifiedError):
    category = "timeout"


@dataclass(frozen=True)
class Classification:
    category: str
    code: str
    permanent: bool


def classify(exc: BaseException) -> Classification:
    """Category, code and permanence for an exception raised by (or around) a handler."""
    code = getattr(exc, "code", None) or exc.__class__.__name__
    explicit = getattr(exc, "category", None)
    if getattr(exc, "permanent", False):
        return Classification(explicit or "validation", code, True)
    if explicit:
        return Classification(explicit, code, explicit in PERMANENT_CATEGORIES)
    if isinstance(exc, TimeoutError | socket.timeout):
        return Classification("timeout", code, False)
    if isinstance(exc, ConnectionError | OSError) and not isinstance(
        exc, FileNotFoundError | PermissionError
    ):
        return Classification("transient", code, False)
    if isinstance(exc, MemoryError | RecursionError):
        return Classification("resource", code, False)
    if isinstance(exc, ValueError | TypeError | KeyError | LookupError):
        return Classification("handler", code, False)
    return Classification("unknown", code, False)


def error_detail(exc: BaseException, *, category: str | None = None) -> dict:
    """What a failed attempt records: category, code, message, permanence, traceback and its hash,
    and `retry_after_seconds` when the error says how long to wait before the next attempt."""
    found = classify(exc)
    trace = "".join(traceback.format_exception(exc))
    # The hash ignores the message so the same failure site groups together in triage.
    site = "".join(traceback.format_tb(exc.__traceback__)) + exc.__class__.__name__
    detail = {
        "category": category or found.category,
        "code": storable(str(found.code)),
        "message": storable(str(exc) or exc.__class__.__name__),
        "permanent": found.permanent,
        "traceback": storable(trace[-8000:]),
        "traceback_hash": hashlib.sha256(site.encode()).hexdigest()[:16],
    }
    retry_after = getattr(exc, "retry_after_seconds", None)
    if retry_after is not None and not found.permanent:
        detail["retry_after_seconds"] = float(retry_after)
    return detail


def storable(text: str) -> str:
    """Text PostgreSQL accepts in JSON: no NUL, no lone surrogates (replaced, not dropped)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")


def simple_error(category: str, code: str, message: str, *, permanent: bool = False) -> dict:
    """An error detail not raised as an exception (poison message, circuit open, cancelled)."""
    return {
        "category": category,
        "code": code,
        "message": message,
        "permanent": permanent,
        "traceback": "",
        "traceback_hash": hashlib.sha256(f"{category}:{code}".encode()).hexdigest()[:16],
    }
