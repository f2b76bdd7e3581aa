"""Handler registry: `@handler("name")` registers a callable that workers run for a node."""

import asyncio
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resilience.errors import ClassifiedError


class HandlerError(ClassifiedError):
    """Raised by a handler to fail its task; `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, code: str = "handler_error", permanent: bool = False):
        super().__init__(message, code=code, category="validation" if permanent else "handler")
        self.permanent = permanent


@dataclass(frozen=True)
class TaskContext:
    """What a handler knows about the task it runs, besides its resolved config."""

    execution_id: str
    node_id: str
    attempt: int
    params: dict = field(default_factory=dict)
    # Outputs of the node's direct dependencies, for handlers registered with upstream=True.
    upstream: dict = field(default_factory=dict)
    deadline: float | None = None
    # Set by the worker on timeout, cancel or shutdown; long handlers should watch it.
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    stop_reason: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def for_task(cls, task) -> "TaskContext":
        """The context a worker hands the handler of a TaskMessage."""
        return cls(
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            params=task.params,
            upstream=task.upstream or {},
            deadline=task.deadline,
        )

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this node in this execution: pass it to services."""
        return f"{self.execution_id}:{self.node_id}"

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason.append(reason)
            self.stop.set()

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes early when the worker stops this task; raises Interrupted then."""
        if self.stop.wait(seconds):
            raise Interrupted(self.stop_reason[0] if self.stop_reason else "stopped")


class Interrupted(Exception):
    """The worker stopped this task (timeout, cancel, shutdown) before the handler finished."""

    def __init__(self, reason: str):
        super().__init__(f"interrupted: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Handler:
    """A registered handler and how the engine should call it."""

    name: str
    function: Callable[[dict, TaskContext], Any]
    upstream: bool = False

    @property
    def is_async(self) -> bool:
        return asyncio.iscoroutinefunction(self.function)


REGISTRY: dict[str, Handler] = {}


def handler(name: str, *, upstream: bool = False) -> Callable:
    """Register a handler under `name`; with upstream=True it also receives its parents' outputs."""

    def register(function: Callable) -> Callable:
        if name in REGISTRY and REGISTRY[name].function is not function:
            raise ValueError(f"handler {name!r} is already registered")
        REGISTRY[name] = Handler(name, function, upstream)
        return function

    return register


def get_handler(name: str) -> Handler | None:
    return REGISTRY.get(name)


def handler_names() -> frozenset[str]:
    return frozenset(REGISTRY)


def load_handlers(modules: list[str]) -> None:
    """Import the built-ins and every module listed in HANDLER_MODULES (they register on import)."""
    importlib.import_module("workflows.handlers.builtin")
    for module in modules:
        importlib.import_module(module)
