"""A typed client for the workflow orchestrator's REST API (/api/v1), sync and async, on httpx.

    from orchestrator_client import Client

    with Client("http://127.0.0.1:8000", token) as client:
        submitted = client.submit(dag)
        client.trigger(submitted.execution_id, params={"data": "yes"})
        final = client.wait(submitted.execution_id)

It imports nothing from the server: copy this package into your program, with httpx installed.
"""

from orchestrator_client.async_client import AsyncClient
from orchestrator_client.client import Client
from orchestrator_client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    OrchestratorError,
    PayloadTooLarge,
    RateLimited,
    ServerUnreachable,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    Unprocessable,
    UnsupportedMediaType,
    ValidationFailed,
    WaitTimedOut,
)
from orchestrator_client.models import (
    TERMINAL_STATUSES,
    Cancelled,
    DeadLetter,
    ExecutionResults,
    ExecutionStatus,
    RunAccepted,
    Submitted,
    TaskAttempt,
    TaskRun,
    Triggered,
)
from orchestrator_client.retries import RetryPolicy

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "AsyncClient",
    "Cancelled",
    "Client",
    "Conflict",
    "DeadLetter",
    "ExecutionResults",
    "ExecutionStatus",
    "Forbidden",
    "NotFound",
    "OrchestratorError",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "RunAccepted",
    "ServerUnreachable",
    "Submitted",
    "TaskAttempt",
    "TaskRun",
    "Triggered",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationFailed",
    "WaitTimedOut",
]
