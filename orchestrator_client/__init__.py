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
    ChildExecution,
    DeadLetter,
    ExecutionChange,
    ExecutionResults,
    ExecutionStatus,
    ParentTask,
    Progress,
    RunAccepted,
    RunningTask,
    Submitted,
    TaskAttempt,
    TaskRun,
)
from orchestrator_client.retries import RetryPolicy

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "AsyncClient",
    "ChildExecution",
    "Client",
    "Conflict",
    "DeadLetter",
    "ExecutionChange",
    "ExecutionResults",
    "ExecutionStatus",
    "Forbidden",
    "NotFound",
    "OrchestratorError",
    "ParentTask",
    "PayloadTooLarge",
    "Progress",
    "RateLimited",
    "RetryPolicy",
    "RunAccepted",
    "RunningTask",
    "ServerUnreachable",
    "Submitted",
    "TaskAttempt",
    "TaskRun",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationFailed",
    "WaitTimedOut",
]
