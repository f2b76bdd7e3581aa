"""Drives the engine the way a user does: the REST API, polled until executions end."""

from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from tests.polling import poll_until

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})


class WorkflowApi:
    """The /api/v1 endpoints an end-to-end test needs, each checking its HTTP status."""

    def __init__(self, client: APIClient, *, check_alive: Callable[[], None] = lambda: None):
        self.client = client
        # Called on every poll, so a crashed runner fails the test at once, not at the deadline.
        self.check_alive = check_alive

    def submit(self, payload: dict) -> dict:
        """POST /workflow; returns {"workflow_id", "execution_id", ...}."""
        return self._expect(self.client.post("/api/v1/workflow", payload, format="json"), 201)

    def new_execution(self, workflow_id: str) -> str:
        """POST /workflows/{id}/executions; returns the new execution's id."""
        response = self.client.post(f"/api/v1/workflows/{workflow_id}/executions", format="json")
        return self._expect(response, 201)["execution_id"]

    def trigger(self, execution_id: str, params: dict | None = None) -> dict:
        body = {} if params is None else {"params": params}
        response = self.client.post(f"/api/v1/workflow/trigger/{execution_id}", body, format="json")
        return self._expect(response, 202)

    def status(self, execution_id: str) -> dict:
        return self._expect(self.client.get(f"/api/v1/workflow/{execution_id}"), 200)

    def cancel(self, execution_id: str) -> dict:
        return self._expect(self.client.delete(f"/api/v1/workflow/{execution_id}"), 200)

    def outputs(self, execution_id: str) -> dict:
        """Outputs of the completed nodes, by node id."""
        return self._expect(self.client.get(f"/api/v1/workflow/{execution_id}/results"), 200)["outputs"]

    def tasks(self, execution_id: str) -> dict[str, dict]:
        """Every task run (status, attempt, resolved config, output, ...), by node id, page by page
        (a page holds at most API_MAX_PAGE_SIZE, 500 by default)."""
        tasks: dict[str, dict] = {}
        while True:
            query = {"limit": 500, "offset": len(tasks)}
            page = self._expect(self.client.get(f"/api/v1/executions/{execution_id}/tasks", query), 200)
            tasks.update((task["node_id"], task) for task in page["results"])
            if page["next"] is None:
                return tasks

    def run(self, payload: dict, params: dict | None = None) -> str:
        """Submit and trigger; returns the execution id."""
        execution_id = self.submit(payload)["execution_id"]
        self.trigger(execution_id, params)
        return execution_id

    def wait_until(self, check: Callable[[], Any], *, what: str | Callable[[], str]) -> Any:
        """poll_until, failing early if one of the engine's processes has died."""

        def alive_and(check=check):
            self.check_alive()
            return check()

        return poll_until(alive_and, what=what)

    def wait_for_end(self, execution_id: str) -> dict:
        """Poll the status until the execution is terminal; returns the final status."""
        last: dict = {}

        def ended() -> dict | None:
            last.update(self.status(execution_id))
            return last if last["status"] in TERMINAL_STATUSES else None

        return self.wait_until(
            ended,
            what=lambda: (
                f"execution {execution_id} to end; last seen {last.get('status')}, "
                f"progress {last.get('progress')}, error {last.get('error')}"
            ),
        )

    @staticmethod
    def _expect(response, status_code: int) -> dict:
        assert response.status_code == status_code, (
            f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']}: "
            f"expected {status_code}, got {response.status_code}: {response.content[:2000]!r}"
        )
        return response.json()
