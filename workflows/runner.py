"""The loop every long-running command shares: a stop flag set by signals, `--once`, drain."""

import os
import signal
import socket
import threading


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
    """Call `step()` until the stop flag is set (or once). `step` blocks at most ~2 s itself."""
    while not stop.is_set:
        step()
        if once:
            return
