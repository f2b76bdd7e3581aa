"""The asyncio client: the same calls as `Client` (from `endpoints`), awaited."""

import asyncio
from collections.abc import AsyncIterator, Callable
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


class AsyncClient:
    """`Client` for asyncio: every method is awaited (`tasks` and `dead_letters` are async
    iterators). Use it as an async context manager, or `await aclose()`."""

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
        self.http = httpx.AsyncClient(**self.connection.http_options())

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self, dag: dict, idempotency_key: str | None = None) -> Submitted:
        """See `Client.submit`."""
        return await self.send(endpoints.submit(dag, idempotency_key))

    async def trigger(
        self, execution_id: str, params: dict | None = None, idempotency_key: str | None = None
    ) -> ExecutionChange:
        """See `Client.trigger`."""
        return await self.send(endpoints.trigger(execution_id, params, idempotency_key))

    async def run(
        self,
        workflow: dict | str,
        params: dict | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionStatus | RunAccepted:
        """See `Client.run`."""
        return await self.send(endpoints.run(workflow, params, wait, idempotency_key))

    async def status(self, execution_id: str, wait: float | None = None) -> ExecutionStatus:
        """See `Client.status`."""
        return await self.send(endpoints.status(execution_id, wait))

    async def wait(
        self,
        execution_id: str,
        timeout: float | None = 300.0,
        on_progress: waiting.ProgressCallback | None = None,
        poll_seconds: float = waiting.POLL_SECONDS,
    ) -> ExecutionStatus:
        """See `Client.wait`."""
        steps = waiting.wait_for_end(
            execution_id, timeout=timeout, poll_seconds=poll_seconds, on_progress=on_progress
        )
        try:
            call = next(steps)
            while True:
                call = steps.send(await self.send(call))
        except StopIteration as done:
            return done.value

    async def results(self, execution_id: str) -> ExecutionResults:
        """See `Client.results`."""
        return await self.send(endpoints.results(execution_id))

    def tasks(self, execution_id: str) -> AsyncIterator[TaskRun]:
        """See `Client.tasks`: `async for task in client.tasks(id)`."""
        return self.pages(lambda offset: endpoints.tasks_page(execution_id, offset))

    async def rerun(self, execution_id: str, idempotency_key: str | None = None) -> ExecutionChange:
        """See `Client.rerun`."""
        return await self.send(endpoints.rerun(execution_id, idempotency_key))

    async def retrigger(
        self, execution_id: str, params: dict | None = None, idempotency_key: str | None = None
    ) -> RunAccepted:
        """See `Client.retrigger`."""
        return await self.send(endpoints.retrigger(execution_id, params, idempotency_key))

    async def cancel(self, execution_id: str) -> ExecutionChange:
        """See `Client.cancel`."""
        return await self.send(endpoints.cancel(execution_id))

    def dead_letters(
        self,
        status: str | None = None,
        handler: str | None = None,
        category: str | None = None,
        execution: str | None = None,
    ) -> AsyncIterator[DeadLetter]:
        """See `Client.dead_letters`: `async for letter in client.dead_letters(...)`."""
        filters = {"status": status, "handler": handler, "category": category, "execution": execution}
        return self.pages(lambda offset: endpoints.dead_letters_page(filters, offset))

    async def dead_letter(self, letter_id: int) -> DeadLetter:
        """See `Client.dead_letter`."""
        return await self.send(endpoints.dead_letter(letter_id))

    async def dead_letter_retry(self, letter_id: int, note: str = "") -> DeadLetter:
        """See `Client.dead_letter_retry`."""
        return await self.send(endpoints.dead_letter_retry(letter_id, note))

    async def dead_letter_discard(self, letter_id: int, note: str = "") -> DeadLetter:
        """See `Client.dead_letter_discard`."""
        return await self.send(endpoints.dead_letter_discard(letter_id, note))

    async def pages(self, page_at: Callable[[int], Call[Page[T]]]) -> AsyncIterator[T]:
        """See `Client.pages`."""
        offset: int | None = 0
        while offset is not None:
            page = await self.send(page_at(offset))
            for item in page.items:
                yield item
            offset = page.next_offset

    async def send(self, call: Call[T]) -> T:
        """See `Client.send`."""
        attempt = 1
        while True:
            try:
                return endpoints.answer(call, await self._exchange(call))
            except OrchestratorError as failure:
                delay = self.retry.delay(attempt, failure, repeatable=call.repeatable)
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt += 1

    async def _exchange(self, call: Call) -> httpx.Response:
        try:
            return await self.http.send(call.request(self.http, self.connection.timeout))
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{call.method} {self.connection.api_url}/{call.path}: {exc!r}") from exc
