"""The load shape for the peers' clients: a closed loop of client threads, each running one
workflow to its end, then the next. Standard library only: it runs inside the peers' venvs.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable


def run_closed_loop(
    *,
    workflows: int,
    clients: int,
    connect: Callable[[], object],
    run_one: Callable[[object, float], None],
    timeout: float,
) -> dict:
    """`clients` threads share `workflows` runs. Each thread first calls `connect()` (its own
    connection, before the clock starts), then `run_one(connection, seconds left)` per workflow,
    which returns when the workflow has ended and raises when it failed."""
    lock = threading.Lock()
    remaining = iter(range(workflows))
    start = threading.Event()
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: list[str] = []
    deadline = [0.0]

    def take() -> int | None:
        if time.monotonic() > deadline[0]:
            return None
        with lock:
            return next(remaining, None)

    def client_loop() -> None:
        connection = connect()
        start.wait()
        while take() is not None:
            began = time.perf_counter()
            try:
                run_one(connection, max(1.0, deadline[0] - time.monotonic()))
            except Exception as exc:  # any failure is a data point for the report, not a crash
                with lock:
                    statuses["ERROR"] += 1
                    errors.append(f"{exc.__class__.__name__}: {exc}")
                continue
            with lock:
                statuses["SUCCESS"] += 1
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # let every client connect before the clock starts
    began = time.perf_counter()
    deadline[0] = time.monotonic() + timeout
    start.set()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline[0] + 5 - time.monotonic()))
    return {
        "latencies": latencies,
        "statuses": dict(statuses),
        "errors": errors[:20],
        "wall_seconds": time.perf_counter() - began,
    }
