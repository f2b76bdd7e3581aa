"""Chaos soak: while ten-node workflows run, every 2-5 s (just after new work went in) something
fails at random: a runner killed -9 (its supervisor starts it again), a runner frozen (SIGSTOP)
for 1-3 s, Redis restarted (AOF on), or PostgreSQL restarted (fast: every connection cut). Every
execution must end COMPLETED with each effect once, and the test reports how long the engine
took to drain after the last fault.

CI runs a short soak (SOAK_SECONDS, default 20 s, SOAK_WORKFLOWS, default 40); `make soak` runs
the full one: 5 minutes, 500 workflows."""

import contextlib
import os
import random
import signal
import time

import pytest

from tests.faults.api import EngineApi, Unavailable, over_http
from tests.faults.dags import node, workflow
from tests.faults.processes import prepare_database
from tests.polling import poll_until

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))
SOAK_WORKFLOWS = int(os.environ.get("SOAK_WORKFLOWS", "40"))
BRANCHES = 8
EFFECT = {"seconds": 0.2, "idempotent": True}
MEAN_PAUSE_SECONDS = 3.5


def ten_nodes(name: str) -> dict:
    """root -> 8 branches -> join."""
    branches = [f"branch_{i}" for i in range(BRANCHES)]
    return workflow(
        name,
        node("root", config=EFFECT),
        *(node(branch, "root", config=EFFECT) for branch in branches),
        node("join", *branches, config=EFFECT),
    )


NODES = ["root", *(f"branch_{i}" for i in range(BRANCHES)), "join"]


def patiently(call):
    """The API may be down for a moment while its database restarts: try again."""
    return poll_until(lambda: _or_none(call), what="the API to answer", timeout=60)


def _or_none(call):
    try:
        return call()
    except Unavailable:
        return None


def test_chaos_soak_every_execution_completes_each_effect_once(
    throwaway_redis, throwaway_postgres, fleet, ledger, tmp_path
):
    redis_server = throwaway_redis(appendonly=True)
    fleet.env.update(
        REDIS_URL=redis_server.url,
        DATABASE_URL=throwaway_postgres.url("orchestrator"),
        VAR_DIR=str(tmp_path / "var"),
    )
    token = prepare_database(fleet.env)
    server, base_url = fleet.start_api()
    runners = fleet.start_engine(workers=2, concurrency=4, orchestrators=2)
    fleet.wait_started([server])
    api = EngineApi(over_http(base_url, token))
    # Workflows go in all through the soak, so that faults keep landing on work in flight.
    share = max(1, round(SOAK_WORKFLOWS * MEAN_PAUSE_SECONDS / SOAK_SECONDS))
    executions: list[str] = []

    chance = random.Random(20261203)
    faults: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < SOAK_SECONDS or len(executions) < SOAK_WORKFLOWS:
        for _ in range(min(share, SOAK_WORKFLOWS - len(executions))):
            executions.append(patiently(lambda: api.run(ten_nodes(f"soak {len(executions)}"))))
        time.sleep(chance.uniform(0.3, 1.5))  # the fault lands while that work is in flight
        fault = chance.choice(["kill", "freeze", "redis", "postgres"])
        victim = chance.choice(runners)
        if fault == "kill":
            with contextlib.suppress(ProcessLookupError):  # it may be between two lives
                fleet.kill(victim)
        elif fault == "freeze":
            with contextlib.suppress(ProcessLookupError):
                frozen = victim.pid
                os.kill(frozen, signal.SIGSTOP)
                time.sleep(chance.uniform(1, 3))
                os.kill(frozen, signal.SIGCONT)
        elif fault == "redis":
            redis_server.restart()
        else:
            throwaway_postgres.restart()
        faults.append(fault if fault in {"redis", "postgres"} else f"{fault} {victim.name}")
        last_fault = time.monotonic()
        time.sleep(chance.uniform(1.5, 3.5))

    finals = [patiently(lambda e=e: api.wait_for_end(e)) for e in executions]
    drained = time.monotonic() - last_fault
    assert [final["status"] for final in finals] == ["COMPLETED"] * len(executions), faults
    for execution_id in executions:
        ledger.assert_once(execution_id, NODES)
    print(f"\nchaos soak: {len(faults)} faults ({', '.join(faults)}), drained {drained:.1f} s after the last")
