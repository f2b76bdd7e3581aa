"""Typed answers: frozen dataclasses mirroring the API's response bodies.

Each class names the OpenAPI component it mirrors (`SCHEMA`), and a test compares the two, so a
renamed or added field on the server is noticed here. Built with `from_json`, which ignores keys
it does not know: a newer server with more fields does not break an older client.
"""

import dataclasses
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
class ExecutionChange:
    """What trigger, rerun and cancel answer: the execution's status after the change."""

    SCHEMA: ClassVar[str] = "ExecutionChange"

    execution_id: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class RunAccepted:
    """A new execution, under way: what `retrigger()` answers, and `run()` when the execution had
    not ended within `wait`. Follow it with `wait()`."""

    SCHEMA: ClassVar[str] = "ExecutionStarted"

    execution_id: str
    workflow_id: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True)
class Progress:
    """How many of the execution's tasks are in each state."""

    SCHEMA: ClassVar[str] = "Progress"

    total: int
    pending: int
    queued: int
    running: int
    completed: int
    failed: int
    skipped: int
    cancelled: int

    @property
    def done(self) -> int:
        """Tasks that will not change again."""
        return self.completed + self.failed + self.skipped + self.cancelled


@dataclasses.dataclass(frozen=True)
class RunningTask:
    """A node a worker is executing right now."""

    SCHEMA: ClassVar[str] = "RunningTask"

    started_at: datetime
    worker: str


@dataclasses.dataclass(frozen=True)
class ParentTask:
    """The sub-workflow node (of another execution) that started this execution."""

    SCHEMA: ClassVar[str] = "ParentTask"

    execution_id: str
    node_id: str


@dataclasses.dataclass(frozen=True)
class ChildExecution:
    """An execution one of this execution's sub-workflow nodes started."""

    SCHEMA: ClassVar[str] = "ChildExecution"

    node_id: str
    execution_id: str
    status: str


@dataclasses.dataclass(frozen=True)
class ExecutionStatus:
    """An execution's state, every node's state and the counts by state."""

    SCHEMA: ClassVar[str] = "ExecutionStatus"

    execution_id: str
    workflow_id: str
    workflow_name: str
    status: str
    node_statuses: dict[str, str]
    progress: Progress
    running: dict[str, RunningTask]
    params: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    parent: ParentTask | None
    children: list[ChildExecution]

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
    worker: str


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """One task of an execution: its resolved config, attempts, output or error, timings."""

    SCHEMA: ClassVar[str] = "TaskRunOutput"

    node_id: str
    handler: str
    status: str
    attempt: int
    config: Any | None
    output: Any | None
    error: Any | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    worker: str
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
    config: Any | None
    status: str
    created_at: datetime
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
        elif optional(kind):
            values[field.name] = None
        else:
            raise UnexpectedResponse(f"{cls.__name__}: the answer has no {field.name!r}")
    return cls(**values)


def optional(kind: Any) -> bool:
    """The field may be absent or null (`X | None`)."""
    return type(None) in typing.get_args(kind)


def _converted(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if optional(kind):
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    origin = typing.get_origin(kind)
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if dataclasses.is_dataclass(kind):
        return from_json(kind, value)
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(kind)
        return [_converted(item, each) for each in value]
    if origin is dict and isinstance(value, dict):
        _, item = typing.get_args(kind)
        return {key: _converted(item, each) for key, each in value.items()}
    return value
