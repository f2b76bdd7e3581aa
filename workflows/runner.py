"""The loop every long-running command shares: a stop flag set by signals, `--once`, drain."""

import os
import signal
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import CommandError
from django.db import close_old_connections, connection

from workflows import metrics
from workflows.outages import Outage
from workflows.streams import RedisMayEvict, get_streams

# The longest wait between two tries of a failing step.
RETRY_MAX_SECONDS = 5.0
# How often a turning loop touches its heartbeat file and retires an aged database connection.
UPKEEP_SECONDS = 1.0


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
    upkeep = Upkeep(settings.RUNNER_HEARTBEAT_FILE)
    while not stop.is_set:
        upkeep.tick()
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


class Upkeep:
    """Once a second at most, between two steps: touch the heartbeat file a container
    healthcheck reads (a loop that stopped turning stops touching it), and close a database
    connection older than DB_CONN_MAX_AGE, as Django does at the end of a request (a runner
    has none)."""

    def __init__(self, heartbeat_file: str, *, clock=time.monotonic):
        self.heartbeat = Path(heartbeat_file) if heartbeat_file else None
        self.clock = clock
        self.due = 0.0

    def tick(self) -> None:
        now = self.clock()
        if now < self.due:
            return
        self.due = now + UPKEEP_SECONDS
        if self.heartbeat is not None:
            self.heartbeat.touch()  # one utime once the file exists
        close_old_connections()


def bound_runner_statements() -> None:
    """This process's PostgreSQL sessions use RUNNER_STATEMENT_TIMEOUT_MS: reconnect with it."""
    if connection.vendor == "postgresql":
        # The settings dict every thread's connection is made from, not a copy.
        connection.settings_dict["OPTIONS"]["options"] = settings.RUNNER_DB_SESSION_OPTIONS
        connection.close()


def start_runner(metrics_port: int):
    """What every runner does first: stop flag on signals, bounded statements, its own /metrics,
    a Redis that will not evict stream entries, consumer groups in place. Returns (stop flag,
    streams)."""
    stop = StopFlag()
    stop.install()
    bound_runner_statements()
    metrics.serve(metrics_port)
    streams = get_streams()
    try:
        streams.check_no_eviction()
    except RedisMayEvict as exc:
        raise CommandError(str(exc)) from exc
    streams.ensure_groups()
    return stop, streams
