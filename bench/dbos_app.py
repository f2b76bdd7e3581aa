"""The DBOS side of the comparison: no-op steps, the shapes as workflows, one queue.

Imported only inside var/dbos-venv (dbos is not a project dependency), by the worker processes
(`python -m bench.dbos_app worker`) and by `bench.dbos_client` for the names it enqueues.

python -m bench.dbos_app prepare   # create and migrate the system database, register the queue
python -m bench.dbos_app worker    # launch DBOS (a queue worker) and run until SIGTERM
"""

import os
import signal
import sys
import threading

from dbos import DBOS, DBOSConfig

APP_NAME = "bench"
QUEUE = "bench"


def config() -> DBOSConfig:
    """Only what DBOS needs to run (name, system database): every other setting is its default."""
    return {"name": APP_NAME, "system_database_url": os.environ["BENCH_DBOS_URL"]}


@DBOS.step()
def noop(index: int = 0) -> dict:
    """The DBOS twin of the engine's `input` handler: returns at once."""
    return {}


@DBOS.step()
def join(results: list) -> dict:
    """Receives every fanned-out result, like the engine's `output` join node."""
    return {"inputs": len(results)}


@DBOS.workflow()
def two_steps(index: int) -> dict:
    """input -> output, the unit of the load shape."""
    noop(index)
    return join([noop(index)])


@DBOS.workflow()
def fan_out_in(width: int) -> dict:
    """1 root step -> `width` no-op steps enqueued on the queue (any worker runs them) -> 1 join
    step over their results, as DBOS documents fan-out: enqueue, then wait on every handle."""
    noop()
    queue = DBOS.retrieve_queue(QUEUE)
    handles = [queue.enqueue(noop, i) for i in range(width)]
    return join([handle.get_result() for handle in handles])


@DBOS.workflow()
def chain(length: int) -> dict:
    """`length` no-op steps one after another, in the workflow's own process (each step's
    outcome is committed before the next starts)."""
    for i in range(length):
        noop(i)
    return {"steps": length}


def prepare() -> None:
    """Migrate the system database and register the queue once, before the workers start (three
    processes migrating a fresh database at the same time would race)."""
    DBOS(config=config())
    DBOS.launch()
    DBOS.register_queue(QUEUE)
    DBOS.destroy()


def worker() -> None:
    """A DBOS process: its queue thread polls the queue and runs what it dequeues until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DBOS(config=config())
    DBOS.launch()
    print("bench dbos worker ready", flush=True)
    while not stop.wait(1.0):
        pass
    DBOS.destroy()
    # Workflows still running (a shape cut off at its time limit) would keep the interpreter
    # waiting on their threads; their state is in the database, where DBOS would recover them.
    os._exit(0)


if __name__ == "__main__":
    {"prepare": prepare, "worker": worker}[sys.argv[1]]()
