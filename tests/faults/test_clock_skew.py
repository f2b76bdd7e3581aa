"""Workers whose clocks are wrong by ten minutes (`faketime`, one ahead and one behind) while
the orchestrator, reaper and Redis keep the right time. Every time the engine writes to or
compares in Redis (due retries and deferrals, circuit reopening, rate-limit windows, claims) is
on Redis's clock (`Streams.now`), and task timeouts are measured on the worker's own clock, from
its own start; so nothing times out or is reclaimed early, rate-limited work is not held ten
minutes, and the recorded task times are the cluster's."""

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.faults.dags import node, workflow
from tests.faults.ledger import START

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SKEWS = {"worker-ahead": "+600", "worker-behind": "-600"}  # seconds
BRANCHES = 6
# Debian's libfaketime (package faketime), preloaded into the worker itself so that it gets its
# signals directly (the `faketime` wrapper would keep SIGTERM from it).
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def start_skewed(fleet, name: str, skew: str):
    """A worker whose wall clock is `skew` off; its monotonic clock stays true, as on a host
    whose time is set wrong (and timed waits keep working)."""
    skewed = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": skew, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return fleet.start(name, "runworker", "--concurrency", "4", env=skewed)


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="faketime is not installed (make test installs it)")
def test_skewed_workers_neither_time_out_nor_hold_work_early_or_late(fleet, api, ledger):
    workers = [start_skewed(fleet, name, skew) for name, skew in SKEWS.items()]
    fleet.start_engine(workers=0)
    fleet.wait_started(workers)
    # Rate-limited branches are deferred through the delayed set (2 per second); each runs about
    # a second of its 3 s timeout.
    branches = [f"branch_{i}" for i in range(BRANCHES)]
    started = time.time()
    execution_id = api.run(
        workflow(
            "clock skew",
            node("root"),
            *(
                node(branch, "root", config={"seconds": 1, "rate_limit": "2/s"}, timeout_seconds=3)
                for branch in branches
            ),
            node("join", *branches),
        )
    )

    final = api.wait_for_end(execution_id)
    took = time.time() - started

    assert final["status"] == "COMPLETED", final
    assert took < 30, f"rate-limited work waited on a skewed clock: {took:.1f} s"
    for branch in branches:  # no premature timeout, no early reclaim: each ran once
        assert len(ledger.rows(execution_id, branch, START)) == 1
    ledger.assert_once(execution_id, ["root", *branches, "join"])
    tasks = api.tasks(execution_id)
    assert {task["worker"].split("@")[0] for task in tasks.values()} >= {"worker"}
    for task in tasks.values():  # recorded on the cluster's clock, not ten minutes off
        finished = datetime.fromisoformat(task["finished_at"].replace("Z", "+00:00")).timestamp()
        assert started - 5 < finished < time.time() + 5, (task["node_id"], task["finished_at"])
