"""Drives the engine as a user does, through /api/v1: in-process with DRF's APIClient when the
test uses pytest-django's database, over real HTTP when the test runs its own API server."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from tests.polling import poll_until

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


class Unavailable(Exception):
    """The API could not answer right now (a server it needs is restarting)."""


def in_process(client: APIClient) -> Callable[[str, str, dict | None], tuple[int, Any]]:
    """A transport over DRF's test client (same process, pytest-django's database)."""

    def send(method: str, path: str, body: dict | None) -> tuple[int, Any]:
        response = client.generic(
            method, path, json.dumps(body) if body is not None else "", content_type="application/json"
        )
        return response.status_code, response.json() if response.content else None

    return send


def over_http(base_url: str, token: str) -> Callable[[str, str, dict | None], tuple[int, Any]]:
    """A transport over real HTTP, for a test that runs its own API server."""
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Token {token}"}, timeout=10)

    def send(method: str, path: str, body: dict | None) -> tuple[int, Any]:
        try:
            response = client.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise Unavailable(str(exc)) from exc
        return response.status_code, response.json() if response.content else None

    return send


class EngineApi:
    """The endpoints a fault test needs, each checking its HTTP status."""

    def __init__(self, send, *, check: Callable[[], None] = lambda: None):
        self.send = send
        # Called on every poll, so a crashed runner fails the test at once, not at the deadline.
        self.check = check

    def run(self, payload: dict, params: dict | None = None) -> str:
        """Submit and trigger; returns the execution id."""
        execution_id = self._call("POST", "/api/v1/workflow", payload, 201)["execution_id"]
        self._call("POST", f"/api/v1/workflow/trigger/{execution_id}", {"params": params or {}}, 202)
        return execution_id

    def status(self, execution_id: str) -> dict:
        return self._call("GET", f"/api/v1/workflow/{execution_id}", None, 200)

    def tasks(self, execution_id: str) -> dict[str, dict]:
        """Every task run (status, attempt, worker, output, error, ...), by node id, page by page
        (a page holds at most API_MAX_PAGE_SIZE, 500 by default)."""
        tasks: dict[str, dict] = {}
        while True:
            path = f"/api/v1/executions/{execution_id}/tasks/?limit=500&offset={len(tasks)}"
            page = self._call("GET", path, None, 200)
            tasks.update((task["node_id"], task) for task in page["results"])
            if page["next"] is None:
                return tasks

    def dead_letters(self, execution_id: str) -> list[dict]:
        """The execution's dead letters (staff only)."""
        return self._call("GET", f"/api/v1/admin/dlq/?execution={execution_id}", None, 200)["results"]

    def retry_dead_letter(self, letter_id: int) -> dict:
        return self._call("POST", f"/api/v1/admin/dlq/{letter_id}/retry", {"note": "condition fixed"}, 200)

    def stream_lag(self) -> dict | None:
        """Entries waiting or in flight per stream, as /health reports them (None if degraded)."""
        try:
            return self._call("GET", "/health", None, 200)["checks"]["streams"]
        except Unavailable:
            return None

    def pending_tasks(self) -> int:
        """Task messages delivered to a worker and not yet acked."""
        lag = self.stream_lag()
        assert lag is not None, "/health reports a dependency down"
        return lag["tasks"]["pending"]

    def drained(self) -> bool:
        """No task or completion is waiting or in flight (late ones included)."""
        lag = self.stream_lag()
        return lag is not None and all(
            lag[stream] == {"length": 0, "pending": 0} for stream in ("tasks", "completions")
        )

    def wait_until_drained(self) -> None:
        poll_until(lambda: self.check() or self.drained(), what="the task and completion streams to drain")

    def wait_for(self, execution_id: str, wanted: Callable[[dict], bool], *, what: str) -> dict:
        """Poll the status until `wanted(status)`; an API that is briefly unavailable is waited out."""
        last: dict = {}

        def reached() -> dict | None:
            self.check()
            try:
                last.update(self.status(execution_id))
            except Unavailable:
                return None
            return last if wanted(last) else None

        try:
            return poll_until(reached, what=what)
        except pytest.fail.Exception as exc:
            pytest.fail(
                f"{exc}; execution {execution_id} never got to {what}: still {last.get('status')}, "
                f"nodes {last.get('node_statuses')}, error {last.get('error')}"
            )

    def wait_for_end(self, execution_id: str) -> dict:
        """Poll until the execution is terminal; returns its final status."""
        return self.wait_for(execution_id, lambda s: s["status"] in TERMINAL, what="a terminal state")

    def _call(self, method: str, path: str, body: dict | None, expected: int) -> Any:
        status, data = self.send(method, path, body)
        if status >= 500:
            raise Unavailable(f"{method} {path}: {status}")
        assert status == expected, f"{method} {path}: expected {expected}, got {status}: {data}"
        return data
