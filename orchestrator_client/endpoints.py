"""What each API call sends and how its answer is read, written once for both clients.

A `Call` describes one HTTP request (method, path, query, body, headers) and how to turn the
answer into a typed result; `Client` and `AsyncClient` only execute calls. Nothing here does
I/O, so the sync and async clients cannot drift apart.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from orchestrator_client.errors import UnexpectedResponse, api_error
from orchestrator_client.models import (
    DeadLetter,
    ExecutionChange,
    ExecutionResults,
    ExecutionStatus,
    RunAccepted,
    Submitted,
    TaskRun,
    from_json,
)

T = TypeVar("T")
# Large pages: fewer round trips; the server caps ?limit= at API_MAX_PAGE_SIZE (500 by default).
PAGE_SIZE = 200
NO_BODY = object()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer (`read(status, json)`)."""

    method: str
    path: str
    read: Callable[[int, Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds the server may hold the request (a long poll); added to the client's timeout.
    holds_for: float = 0.0

    @property
    def repeatable(self) -> bool:
        """Safe to send again after a connection failure, when we cannot know whether the server
        acted: a read, or a write the server recognises by its Idempotency-Key."""
        return self.method == "GET" or "Idempotency-Key" in self.headers

    def request(self, http: httpx.Client | httpx.AsyncClient, timeout: float) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params={name: value for name, value in self.params.items() if value is not None},
            headers=self.headers,
            timeout=timeout + self.holds_for,
            **({} if self.body is NO_BODY else {"json": self.body}),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the offset of the next one (None on the last page)."""

    items: list[T]
    next_offset: int | None


def answer(call: Call[T], response: httpx.Response) -> T:
    """The typed result of a successful answer; the typed `ApiError` of an error answer."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
        if response.is_success:
            raise UnexpectedResponse(
                f"{call.method} {response.request.url}: the answer is not JSON "
                f"(HTTP {response.status_code}, {response.headers.get('content-type', 'no type')})"
            ) from None
    if response.is_success:
        return call.read(response.status_code, body)
    raise api_error(response.status_code, body, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: the API never sends one; fall back to our own backoff


def _as(cls: type[T]) -> Callable[[int, Any], T]:
    return lambda _status, body: from_json(cls, body)


def _idempotency(key: str | None) -> dict[str, str]:
    """The header that makes a write safe to send again: the server answers a repeat with the
    first answer and does nothing twice."""
    return {"Idempotency-Key": key} if key else {}


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def submit(dag: dict, idempotency_key: str | None = None) -> Call[Submitted]:
    """Store a workflow (the DAG document itself is the body) with a new PENDING execution."""
    return Call("POST", "workflow", _as(Submitted), body=dag, headers=_idempotency(idempotency_key))


def trigger(
    execution_id: str, params: dict | None = None, idempotency_key: str | None = None
) -> Call[ExecutionChange]:
    """Start a PENDING execution; `params` are what templates read as `{{ params.x }}`."""
    return Call(
        "POST",
        f"workflow/trigger/{_segment(execution_id)}",
        _as(ExecutionChange),
        body={"params": params or {}},
        headers=_idempotency(idempotency_key),
    )


def run(
    workflow: dict | str,
    params: dict | None = None,
    wait: float | None = None,
    idempotency_key: str | None = None,
) -> Call[ExecutionStatus | RunAccepted]:
    """Submit (a DAG) or reuse (a stored workflow's id) and trigger in one request; the final
    status if it ended within `wait` seconds, else where it stands."""
    body = {"workflow_id": workflow} if isinstance(workflow, str) else {"workflow": workflow}
    body["params"] = params or {}

    def read(status: int, answer: Any) -> ExecutionStatus | RunAccepted:
        return from_json(ExecutionStatus if status == 200 else RunAccepted, answer)

    return Call(
        "POST",
        "workflow/run",
        read,
        params={"wait": wait or None},
        body=body,
        headers=_idempotency(idempotency_key),
        holds_for=wait or 0.0,
    )


def status(execution_id: str, wait: float | None = None) -> Call[ExecutionStatus]:
    """The execution's status; with `wait`, a long poll that answers as soon as it has ended."""
    return Call(
        "GET",
        f"workflow/{_segment(execution_id)}",
        _as(ExecutionStatus),
        params={"wait": wait or None},
        holds_for=wait or 0.0,
    )


def results(execution_id: str) -> Call[ExecutionResults]:
    """The outputs of the execution's completed nodes."""
    return Call("GET", f"workflow/{_segment(execution_id)}/results", _as(ExecutionResults))


def rerun(execution_id: str, idempotency_key: str | None = None) -> Call[ExecutionChange]:
    """Run a FAILED, TIMED_OUT or CANCELLED execution again from its failure: the nodes that did
    not complete run with fresh attempts, the completed ones keep their outputs."""
    return Call(
        "POST",
        f"workflow/{_segment(execution_id)}/rerun",
        _as(ExecutionChange),
        headers=_idempotency(idempotency_key),
    )


def retrigger(
    execution_id: str, params: dict | None = None, idempotency_key: str | None = None
) -> Call[RunAccepted]:
    """Start a new execution of the execution's workflow, with `params` (the old one stays)."""
    return Call(
        "POST",
        f"workflow/{_segment(execution_id)}/retrigger",
        _as(RunAccepted),
        body={"params": params or {}},
        headers=_idempotency(idempotency_key),
    )


def cancel(execution_id: str) -> Call[ExecutionChange]:
    """Cancel the execution: queued tasks are dropped, running handlers asked to stop."""
    return Call("DELETE", f"workflow/{_segment(execution_id)}", _as(ExecutionChange))


def tasks_page(execution_id: str, offset: int) -> Call[Page[TaskRun]]:
    """One page of the execution's tasks, oldest first."""
    return Call(
        "GET",
        f"executions/{_segment(execution_id)}/tasks",
        _page_of(TaskRun, offset),
        params={"limit": PAGE_SIZE, "offset": offset},
    )


def dead_letters_page(filters: dict[str, str | None], offset: int) -> Call[Page[DeadLetter]]:
    """One page of dead letters, newest first, filtered by status, handler, category, execution."""
    return Call(
        "GET",
        "admin/dlq/",
        _page_of(DeadLetter, offset),
        params={**filters, "limit": PAGE_SIZE, "offset": offset},
    )


def dead_letter(letter_id: int) -> Call[DeadLetter]:
    """One dead letter."""
    return Call("GET", f"admin/dlq/{_segment(letter_id)}", _as(DeadLetter))


def dead_letter_retry(letter_id: int, note: str = "") -> Call[DeadLetter]:
    """Re-queue the dead letter's task with fresh attempts; its execution runs again."""
    return Call("POST", f"admin/dlq/{_segment(letter_id)}/retry", _as(DeadLetter), body={"note": note})


def dead_letter_discard(letter_id: int, note: str = "") -> Call[DeadLetter]:
    """Close the dead letter without running it again (kept, status DISCARDED)."""
    return Call("DELETE", f"admin/dlq/{_segment(letter_id)}", _as(DeadLetter), body={"note": note})


def _page_of(cls: type[T], offset: int) -> Callable[[int, Any], Page[T]]:
    def read(_status: int, body: Any) -> Page[T]:
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise UnexpectedResponse(f"expected a page of {cls.__name__} (count, next, results)")
        items = [from_json(cls, item) for item in body["results"]]
        more = body.get("next") is not None and items
        return Page(items, offset + len(items) if more else None)

    return read
