"""Typed answers: frozen dataclasses mirroring the API's response bodies.

Each class names the OpenAPI component it mirrors (`SCHEMA`), and a test compares the two, so a
renamed or added field on the server is noticed here. Built with `from_json`, which ignores keys
it does not know: a newer server with more fields does not break an older client.
"""

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from orchestrator_client.errors import UnexpectedResponse

# An execution in one of these states will not change again (unless re-run).
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Submitted:
    """A stored workflow and its new PENDING execution."""

    SCHEMA: ClassVar[str] = "SubmitOutput"

    workflow_id: str
    execution_id: str
    message: str


@dataclasses.dataclass(frozen=True)
class Triggered:
    """A started execution."""

    SCHEMA: ClassVar[str] = "TriggerOutput"

    execution_id: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class RunAccepted:
    """`run()` when the execution had not ended within `wait`: it goes on; follow it with `wait()`."""

    SCHEMA: ClassVar[str] = "RunAccepted"

    execution_id: str
    workflow_id: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class Cancelled:
    """A cancelled execution."""

    SCHEMA: ClassVar[str] = "CancelOutput"

    execution_id: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class ExecutionStatus:
    """An execution's state, every node's state and the counts by state."""

    SCHEMA: ClassVar[str] = "ExecutionStatus"

    execution_id: str
    workflow_id: str
    workflow_name: str
    status: str
    node_statuses: dict[str, str]
    # total, then one count per task state in lower case: pending, queued, running, completed...
    progress: dict[str, int]
    # {node_id: {"started_at", "worker"}} for the nodes a worker is executing right now.
    running: dict[str, dict[str, Any]]
    params: dict[str, Any] | None
    error: Any
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    parent: dict[str, Any] | None
    children: list[dict[str, Any]]

    @property
    def finished(self) -> bool:
        """The execution has ended (COMPLETED, FAILED, CANCELLED or TIMED_OUT)."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "COMPLETED"


@dataclasses.dataclass(frozen=True)
class ExecutionResults:
    """The outputs of the completed nodes, by node id."""

    SCHEMA: ClassVar[str] = "ExecutionResults"

    execution_id: str
    workflow_id: str
    status: str
    outputs: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TaskAttempt:
    """One failed attempt of a task."""

    SCHEMA: ClassVar[str] = "TaskAttemptOutput"

    attempt: int
    error: Any
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """One task of an execution: its resolved config, attempts, output or error, timings."""

    SCHEMA: ClassVar[str] = "TaskRunOutput"

    node_id: str
    handler: str
    status: str
    attempt: int
    config: Any
    output: Any
    error: Any
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    failed_attempts: list[TaskAttempt]


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A task that failed for good, waiting for an operator to retry or discard it."""

    SCHEMA: ClassVar[str] = "DeadLetterOutput"

    id: int
    execution_id: str
    node_id: str
    handler: str
    attempt: int
    category: str
    code: str
    message: str
    traceback: str
    traceback_hash: str
    config: Any
    status: str
    created_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str


def from_json(cls: type[T], data: Any) -> T:
    """Build `cls` from a decoded JSON object: unknown keys ignored, a missing optional field is
    None, datetimes parsed, nested dataclasses built; a missing required field is an error."""
    if not isinstance(data, dict):
        raise UnexpectedResponse(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if field.name in data:
            values[field.name] = _converted(kind, data[field.name])
        elif _optional(kind):
            values[field.name] = None
        else:
            raise UnexpectedResponse(f"{cls.__name__}: the answer has no {field.name!r}")
    return cls(**values)


def _optional(kind: Any) -> bool:
    return kind is Any or type(None) in typing.get_args(kind)


def _converted(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(kind, types.UnionType):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if dataclasses.is_dataclass(kind):
        return from_json(kind, value)
    if typing.get_origin(kind) is list and isinstance(value, list):
        (item,) = typing.get_args(kind)
        return [_converted(item, each) for each in value]
    return value
