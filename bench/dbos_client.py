"""The shapes on DBOS; runs inside var/dbos-venv and prints one JSON object.

Every shape is enqueued from outside the application with `DBOSClient.enqueue` (as a service
in front of DBOS would start work) and awaited with `handle.get_result()`; the workflows
themselves live in `bench.dbos_app` and run on the worker processes.

python -m bench.dbos_client ready
python -m bench.dbos_client load --workflows 250 --clients 50
python -m bench.dbos_client wide --size 500
python -m bench.dbos_client deep --size 100
"""

import argparse
import json
import os
import sys
import threading
import time

from dbos import DBOSClient

from bench.closed_loop import run_closed_loop
from bench.dbos_app import APP_NAME, QUEUE

TIMEOUT = 300.0
WARM_UP_WIDTH = 20


def connect() -> DBOSClient:
    """A DBOSClient with DBOS's default pool (5 connections)."""
    return DBOSClient(system_database_url=os.environ["BENCH_DBOS_URL"], application_name=APP_NAME)


def enqueue(client: DBOSClient, workflow: str, *args):
    return client.enqueue({"queue_name": QUEUE, "workflow_name": workflow}, *args)


def ready() -> dict:
    """Every worker has launched (the stack waited for that): run a small fan-out and a load
    workflow end to end, so imports and connections are in place before anything is timed."""
    client = connect()
    enqueue(client, "fan_out_in", WARM_UP_WIDTH).get_result()
    enqueue(client, "two_steps", 0).get_result()
    return {"warm_up_width": WARM_UP_WIDTH}


def load(workflows: int, clients: int) -> dict:
    """`clients` threads: enqueue a two-step workflow, then wait for its result.

    The threads share one DBOSClient, as a service in front of DBOS would hold one: 50 clients of
    their own would hold 50 connections, which with the workers' pools (20 each) exceeds
    PostgreSQL's default max_connections of 100. Its pool is not the bottleneck: a poll or an
    enqueue holds a connection for about a millisecond, each thread polls once a second."""
    shared = connect()

    def run_one(client: DBOSClient, seconds_left: float) -> None:
        del seconds_left  # get_result has no timeout; the loop's deadline bounds the shape
        enqueue(client, "two_steps", 0).get_result()

    return run_closed_loop(
        workflows=workflows, clients=clients, connect=lambda: shared, run_one=run_one, timeout=TIMEOUT
    )


def run_workflow(workflow: str, size: int, *, extra_tasks: int, time_limit: float | None = None) -> dict:
    """Enqueue -> result of one workflow, timed, with DBOS's own record of its execution. With a
    `time_limit`, stop waiting then: status CUT_OFF, and the seconds waited are a lower bound."""
    client = connect()
    outcome: dict = {}

    def wait(handle) -> None:
        try:
            handle.get_result()
            outcome["status"] = "SUCCESS"
        except Exception as exc:  # reported, not raised: the suite records it as the shape's error
            outcome["status"] = f"{exc.__class__.__name__}: {exc}"

    began = time.perf_counter()
    handle = enqueue(client, workflow, size)
    waiter = threading.Thread(target=wait, args=(handle,), daemon=True)
    waiter.start()
    waiter.join(time_limit)
    seconds = time.perf_counter() - began
    if waiter.is_alive():
        return {"seconds": seconds, "status": "CUT_OFF", "extra_tasks": extra_tasks}
    recorded = client.retrieve_workflow(handle.get_workflow_id()).get_status()
    ended = recorded.completed_at or recorded.updated_at
    # Dequeue -> completion as DBOS recorded it: the run without the queue's and the client's polls.
    executed = (ended - recorded.dequeued_at) / 1000 if ended and recorded.dequeued_at else None
    return {
        "seconds": seconds,
        "status": outcome["status"],
        "executed_seconds": executed,
        "extra_tasks": extra_tasks,
    }


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_client")
    parser.add_argument("shape", choices=["ready", "load", "wide", "deep"])
    parser.add_argument("--workflows", type=int, default=250)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--time-limit", type=float, help="wide/deep: stop waiting after this many seconds")
    args = parser.parse_args(argv)
    if args.shape == "ready":
        return ready()
    if args.shape == "load":
        return load(args.workflows, args.clients)
    if args.shape == "deep":
        return run_workflow("chain", args.size, extra_tasks=0, time_limit=args.time_limit)
    # The suite counts width + 1 tasks (the join); the root step is the extra one.
    return run_workflow("fan_out_in", args.size, extra_tasks=1, time_limit=args.time_limit)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
