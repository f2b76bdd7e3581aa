"""Handler registry: `@handler("name")` registers a callable that workers run for a node."""

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class HandlerError(Exception):
    """Raised by a handler to fail its task; `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, code: str = "handler_error", permanent: bool = False):
        super().__init__(message)
        self.code = code
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

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this node in this execution: pass it to services."""
        return f"{self.execution_id}:{self.node_id}"


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
