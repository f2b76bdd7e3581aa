"""The loop every long-running command shares: a stop flag set by signals, `--once`, drain."""

import os
import signal
import socket
import threading

from django.db import close_old_connections

from workflows import metrics
from workflows.outages import Outage
from workflows.streams import get_streams

# The longest wait between two tries of a failing step.
RETRY_MAX_SECONDS = 5.0


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it between blocking reads of at most ~2 s."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.event.set())

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


def consumer_name(role: str) -> str:
    """Unique per process, readable in XINFO CONSUMERS: role@host:pid."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def run_until_stopped(step, stop: StopFlag, *, once: bool) -> None:
    """Call `step()` until the stop flag is set (or once). `step` blocks at most ~2 s itself.

    A failing step (Redis unreachable or full, PostgreSQL unreachable) is retried with backoff,
    and logged when the failures start, once per interval while they last and when they end: the
    runner outlives restarts of the servers it depends on without flooding its log.
    """
    backoff = 0.0
    outage = Outage("runner_step")
    while not stop.is_set:
        try:
            step()
        except Exception as exc:  # any dependency failure: report, wait, try again
            # Runners have no request cycle: drop a database connection that broke (restart).
            close_old_connections()
            backoff = min(max(backoff * 2, 0.2), RETRY_MAX_SECONDS)
            outage.failed(exc, retry_in=backoff)
            stop.event.wait(backoff)
        else:
            backoff = 0.0
            outage.ended()
        if once:
            return


def start_runner(metrics_port: int):
    """What every runner does first: stop flag on signals, its own /metrics, a Redis that will
    not evict stream entries, consumer groups in place. Returns (stop flag, streams)."""
    stop = StopFlag()
    stop.install()
    metrics.serve(metrics_port)
    streams = get_streams()
    streams.check_no_eviction()
    streams.ensure_groups()
    return stop, streams
