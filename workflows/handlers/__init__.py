"""Handler registry: `@handler("name")` registers a callable that workers run for a node, with
the schema its config is checked against at submit and the circuit breaker its tasks answer to."""

import asyncio
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resilience.errors import ClassifiedError
from workflows.handlers.schema import ConfigSchema


class HandlerError(ClassifiedError):
    """Raised by a handler to fail its task; `permanent` means retrying cannot help."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "handler_error",
        permanent: bool = False,
        retry_after_seconds: float | None = None,
    ):
        super().__init__(
            message,
            code=code,
            category="validation" if permanent else "handler",
            retry_after_seconds=retry_after_seconds,
        )
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
    # Values the worker removes from this task's output and error before they leave it: the
    # secrets its config referenced, and whatever the handler adds with redact().
    redacted: list = field(default_factory=list, repr=False, compare=False)

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

    def redact(self, value: str) -> None:
        """Keep `value` (a credential the handler used) out of the output and the error."""
        if value and value not in self.redacted:
            self.redacted.append(value)

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


# `circuit=` of a handler that has one circuit breaker for all its tasks (the default).
PER_HANDLER = "handler"


@dataclass(frozen=True)
class Handler:
    """A registered handler and how the engine should call it."""

    name: str
    function: Callable[[dict, TaskContext], Any]
    upstream: bool = False
    config_schema: ConfigSchema | None = None
    # PER_HANDLER, None (no circuit: local work), or config -> the downstream it calls (a host),
    # whose circuit is `<name>:<target>` (None: this task calls nothing that can be down).
    circuit: str | Callable[[dict], str | None] | None = PER_HANDLER

    @property
    def is_async(self) -> bool:
        return asyncio.iscoroutinefunction(self.function)

    def circuit_for(self, config: dict) -> str | None:
        """The circuit breaker a task with this resolved config answers to, or None."""
        if self.circuit == PER_HANDLER:
            return self.name
        if self.circuit is None:
            return None
        target = self.circuit(config)
        return f"{self.name}:{target}" if target else None


REGISTRY: dict[str, Handler] = {}


def handler(
    name: str,
    *,
    upstream: bool = False,
    config_schema: ConfigSchema | None = None,
    circuit: str | Callable[[dict], str | None] | None = PER_HANDLER,
) -> Callable:
    """Register a handler under `name`. upstream=True: it also receives its parents' outputs.
    config_schema: what its config must look like, checked at submit (400 naming the field).
    circuit: PER_HANDLER (one circuit breaker for all its tasks), None (no circuit, for local
    work), or a function of the resolved config naming the downstream it calls (one circuit per
    downstream, so one failing host does not stop calls to the others)."""

    def register(function: Callable) -> Callable:
        if name in REGISTRY and REGISTRY[name].function is not function:
            raise ValueError(f"handler {name!r} is already registered")
        REGISTRY[name] = Handler(name, function, upstream, config_schema, circuit)
        return function

    return register


def get_handler(name: str) -> Handler | None:
    return REGISTRY.get(name)


def circuit_for(handler_name: str, config: dict) -> str | None:
    """The circuit a task answers to; a handler this process does not know keeps one per name."""
    registered = REGISTRY.get(handler_name)
    return registered.circuit_for(config) if registered is not None else handler_name


def config_checks() -> dict[str, Callable[[dict], None] | None]:
    """Every handler's config check for submit (None: any config), by handler name."""
    return {
        name: registered.config_schema.check if registered.config_schema is not None else None
        for name, registered in REGISTRY.items()
    }


def handler_names() -> frozenset[str]:
    return frozenset(REGISTRY)


def load_handlers(modules: list[str]) -> None:
    """Import the built-ins and every module listed in HANDLER_MODULES (they register on import)."""
    importlib.import_module("workflows.handlers.builtin")
    for module in modules:
        importlib.import_module(module)
