"""The errors the client raises: one per kind of answer a caller handles differently.

Every error the API answers has the shape `{"error": {"code", "message", "details"}}`; `ApiError`
carries those fields and the HTTP status, and its subclasses let a caller catch, say, `NotFound`
without comparing numbers.
"""

from typing import Any


class OrchestratorError(Exception):
    """Anything this client raises on purpose."""


class ApiError(OrchestratorError):
    """The API answered with an error (4xx or 5xx)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retry_after: float | None = None,
    ):
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        # Seconds the server asked us to wait before trying again (429 and 503 only).
        self.retry_after = retry_after


class ValidationFailed(ApiError):
    """400: the request (a DAG, params, a filter) is invalid; `code` says how, `details` where."""


class Unauthorized(ApiError):
    """401: no token, or a token the server does not know."""


class Forbidden(ApiError):
    """403: signed in, but without the permission this takes (dead letters: operators only)."""


class NotFound(ApiError):
    """404: no such execution, workflow or dead letter, or one you may not see."""


class Conflict(ApiError):
    """409: the request does not fit the current state (trigger twice, cancel a finished run)."""


class PayloadTooLarge(ApiError):
    """413: the body is over the server's size limit."""


class UnsupportedMediaType(ApiError):
    """415: the body was not JSON."""


class Unprocessable(ApiError):
    """422: e.g. an `Idempotency-Key` reused with another body."""


class RateLimited(ApiError):
    """429: too many requests, long polls or open executions; `retry_after` says when to come back."""


class Unavailable(ApiError):
    """503: a server the API needs (database, Redis) is down or busy; retry after `retry_after`."""


class ServerUnreachable(OrchestratorError):
    """No answer at all: the connection failed or timed out (after the allowed retries)."""


class UnexpectedResponse(OrchestratorError):
    """The server answered something that is not this API's JSON (a proxy's page, a wrong URL)."""


class WaitTimedOut(OrchestratorError):
    """`wait()` gave up before the execution ended; `last` is the last status seen (or None)."""

    def __init__(self, execution_id: str, timeout: float, last: Any = None):
        state = f", still {last.status}" if last is not None else ""
        super().__init__(f"execution {execution_id} did not end within {timeout:g} s{state}")
        self.execution_id = execution_id
        self.timeout = timeout
        self.last = last


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: RateLimited,
    503: Unavailable,
}


def api_error(status: int, body: Any, retry_after: float | None = None) -> ApiError:
    """The typed error for an error answer; a body not in the API's shape still gives one."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": f"http_{status}", "message": "the server answered an error without details"}
    kind = ERRORS_BY_STATUS.get(status, ApiError)
    return kind(
        status,
        str(error.get("code") or f"http_{status}"),
        str(error.get("message") or ""),
        error.get("details"),
        retry_after=retry_after,
    )
