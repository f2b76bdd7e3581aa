"""The synchronous client: executes the calls `endpoints` describes, with retries."""

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx

from orchestrator_client import endpoints, waiting
from orchestrator_client.connection import Connection
from orchestrator_client.endpoints import Call, Page
from orchestrator_client.errors import OrchestratorError, ServerUnreachable
from orchestrator_client.models import (
    DeadLetter,
    ExecutionChange,
    ExecutionResults,
    ExecutionStatus,
    RunAccepted,
    Submitted,
    TaskRun,
)
from orchestrator_client.retries import RetryPolicy

T = TypeVar("T")


class Client:
    """The workflow API over HTTP. `url` and `token` default to ORCHESTRATOR_URL and
    ORCHESTRATOR_TOKEN; use it as a context manager, or `close()` it, to free its connections."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (frozen, so sharing the default is safe)
    ):
        self.connection = Connection.resolve(url, token, timeout)
        self.retry = retry
        self.http = httpx.Client(**self.connection.http_options())

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def submit(self, dag: dict, idempotency_key: str | None = None) -> Submitted:
        """Store a workflow with a new PENDING execution (a retry with the same key is answered
        with the first answer, nothing is stored twice)."""
        return self.send(endpoints.submit(dag, idempotency_key))

    def trigger(
        self, execution_id: str, params: dict | None = None, idempotency_key: str | None = None
    ) -> ExecutionChange:
        """Start a PENDING execution with `params`."""
        return self.send(endpoints.trigger(execution_id, params, idempotency_key))

    def run(
        self,
        workflow: dict | str,
        params: dict | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionStatus | RunAccepted:
        """Submit a DAG (or take a stored workflow's id) and trigger it in one request: the final
        status if it ended within `wait` seconds, else RunAccepted."""
        return self.send(endpoints.run(workflow, params, wait, idempotency_key))

    def status(self, execution_id: str, wait: float | None = None) -> ExecutionStatus:
        """The execution's status; `wait` seconds long-polls until it has ended."""
        return self.send(endpoints.status(execution_id, wait))

    def wait(
        self,
        execution_id: str,
        timeout: float | None = 300.0,
        on_progress: waiting.ProgressCallback | None = None,
        poll_seconds: float = waiting.POLL_SECONDS,
    ) -> ExecutionStatus:
        """The final status once the execution has ended; WaitTimedOut after `timeout` seconds."""
        steps = waiting.wait_for_end(
            execution_id, timeout=timeout, poll_seconds=poll_seconds, on_progress=on_progress
        )
        try:
            call = next(steps)
            while True:
                call = steps.send(self.send(call))
        except StopIteration as done:
            return done.value

    def results(self, execution_id: str) -> ExecutionResults:
        """The outputs of the completed nodes."""
        return self.send(endpoints.results(execution_id))

    def tasks(self, execution_id: str) -> Iterator[TaskRun]:
        """Every task of the execution, page after page."""
        return self.pages(lambda offset: endpoints.tasks_page(execution_id, offset))

    def rerun(self, execution_id: str, idempotency_key: str | None = None) -> ExecutionChange:
        """Run a FAILED, TIMED_OUT or CANCELLED execution again from its failure, in place: the
        nodes that did not complete run again, the completed keep their outputs (409 Conflict
        for an execution in any other state)."""
        return self.send(endpoints.rerun(execution_id, idempotency_key))

    def retrigger(
        self, execution_id: str, params: dict | None = None, idempotency_key: str | None = None
    ) -> RunAccepted:
        """Start a new execution of the same workflow with `params`; the old one is left as is."""
        return self.send(endpoints.retrigger(execution_id, params, idempotency_key))

    def cancel(self, execution_id: str) -> ExecutionChange:
        """Cancel the execution (409 Conflict if it has already ended)."""
        return self.send(endpoints.cancel(execution_id))

    def dead_letters(
        self,
        status: str | None = None,
        handler: str | None = None,
        category: str | None = None,
        execution: str | None = None,
    ) -> Iterator[DeadLetter]:
        """Dead letters, newest first, page after page (operators only)."""
        filters = {"status": status, "handler": handler, "category": category, "execution": execution}
        return self.pages(lambda offset: endpoints.dead_letters_page(filters, offset))

    def dead_letter(self, letter_id: int) -> DeadLetter:
        """One dead letter."""
        return self.send(endpoints.dead_letter(letter_id))

    def dead_letter_retry(self, letter_id: int, note: str = "") -> DeadLetter:
        """Retry the dead letter's task; its execution runs again."""
        return self.send(endpoints.dead_letter_retry(letter_id, note))

    def dead_letter_discard(self, letter_id: int, note: str = "") -> DeadLetter:
        """Close the dead letter without running it again."""
        return self.send(endpoints.dead_letter_discard(letter_id, note))

    def pages(self, page_at: Callable[[int], Call[Page[T]]]) -> Iterator[T]:
        """The items of a paginated list, fetching each page when the previous one is used up."""
        offset: int | None = 0
        while offset is not None:
            page = self.send(page_at(offset))
            yield from page.items
            offset = page.next_offset

    def send(self, call: Call[T]) -> T:
        """Send `call`, retrying as `self.retry` allows; its typed result or error."""
        attempt = 1
        while True:
            try:
                return endpoints.answer(call, self._exchange(call))
            except OrchestratorError as failure:
                delay = self.retry.delay(attempt, failure, repeatable=call.repeatable)
                if delay is None:
                    raise
            time.sleep(delay)
            attempt += 1

    def _exchange(self, call: Call) -> httpx.Response:
        try:
            return self.http.send(call.request(self.http, self.connection.timeout))
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{call.method} {self.connection.api_url}/{call.path}: {exc!r}") from exc
