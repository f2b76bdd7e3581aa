"""The loop every long-running command shares: a stop flag set by signals, `--once`, drain."""

import os
import signal
import socket
import threading

import structlog
from django.db import close_old_connections

from workflows import metrics
from workflows.streams import get_streams

log = structlog.get_logger(__name__)


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

    A failing step (Redis or PostgreSQL unreachable) is logged and retried with backoff: the
    runner outlives restarts of the servers it depends on.
    """
    backoff = 0.0
    while not stop.is_set:
        try:
            step()
            backoff = 0.0
        except Exception as exc:  # any dependency failure: report, wait, try again
            # Runners have no request cycle: drop a database connection that broke (restart).
            close_old_connections()
            backoff = min(max(backoff * 2, 0.2), 5.0)
            log.warning("runner_step_failed", error=f"{exc.__class__.__name__}: {exc}", retry_in=backoff)
            stop.event.wait(backoff)
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
