"""A node whose handler is executing on a real worker shows RUNNING in the status, with its start
time and worker, while it runs, and COMPLETED after: workers still never write PostgreSQL."""

import time
from datetime import datetime

import pytest

from workflows.models import TaskRun

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_sleeping_node_is_running_while_it_sleeps(api, tmp_path):
    started, finished = tmp_path / "started", tmp_path / "finished"
    execution_id = api.run(
        {
            "name": "slow",
            "dag": {
                "nodes": [
                    {
                        "id": "sleeper",
                        "handler": "e2e_sleep",
                        "config": {
                            "seconds": 3,
                            "started_file": str(started),
                            "finished_file": str(finished),
                        },
                    }
                ]
            },
        }
    )
    api.wait_until(started.exists, what="the sleeper to start on a worker")
    handler_started = time.time()

    # The claim is written before the handler starts: the first read after that shows it.
    status = api.status(execution_id)
    stored = TaskRun.objects.get(execution_id=execution_id, node_id="sleeper")

    assert not finished.exists()
    assert status["node_statuses"] == {"sleeper": "RUNNING"}
    assert status["progress"]["running"] == 1
    running = status["running"]["sleeper"]
    assert running["worker"].startswith("worker")
    assert abs(datetime.fromisoformat(running["started_at"]).timestamp() - handler_started) < 2
    assert stored.status == TaskRun.Status.QUEUED  # the worker wrote nothing to PostgreSQL
    final = api.wait_for_end(execution_id)
    assert final["node_statuses"] == {"sleeper": "COMPLETED"}
