"""Child processes of the suite: each in its own session, logged to a file, always stopped.

Stopping is SIGTERM to each child's process group, a bounded wait, then SIGKILL; afterwards
every descendant ever seen (grandchildren in sessions of their own, like the processes that
`runstack` starts) that is still alive gets the same treatment. A Ctrl-C during the wait skips
straight to SIGKILL instead of abandoning the teardown.
"""

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from bench import procstat


class Supervisor:
    """Starts and stops the processes of one system under test; use it as a context manager."""

    def __init__(self, log_dir: Path, *, grace_seconds: float = 20.0):
        self.log_dir = log_dir
        self.grace_seconds = grace_seconds
        self.children: dict[str, subprocess.Popen] = {}
        self.known: set[tuple[int, int]] = set()
        self.hurry = threading.Event()
        self.stopped = False

    def __enter__(self) -> "Supervisor":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        atexit.unregister(self.stop)

    def spawn(self, name: str, argv: list[str], *, env: dict, cwd: Path) -> subprocess.Popen:
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children[name] = process
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def remember_descendants(self) -> None:
        stats = procstat.all_stats()
        for process in self.children.values():
            for pid in procstat.descendants(process.pid, stats):
                self.known.add((pid, stats[pid].start_time))

    def exited(self) -> dict[str, int]:
        """Children that are no longer running, with their exit codes."""
        return {name: p.returncode for name, p in self.children.items() if p.poll() is not None}

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            for signum in previous:
                signal.signal(signum, lambda *_: self.hurry.set())
        try:
            self._terminate()
        finally:
            if in_main:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    def _terminate(self) -> None:
        self.remember_descendants()
        running = [p for p in self.children.values() if p.poll() is None]
        for process in running:
            _signal_group(process.pid, signal.SIGTERM)
        self._wait(lambda: all(p.poll() is not None for p in running), self.grace_seconds)
        for process in running:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        leftovers = [pid for pid, start in self.known if _alive(pid, start)]
        for pid in leftovers:
            _signal_pid(pid, signal.SIGTERM)
        self._wait(lambda: not any(_alive(pid, start) for pid, start in self.known), 5.0)
        for pid, start in self.known:
            if _alive(pid, start):
                _signal_pid(pid, signal.SIGKILL)

    def _wait(self, done, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline and not self.hurry.is_set():
            time.sleep(0.1)


def _alive(pid: int, start_time: int) -> bool:
    stat = procstat.read_stat(pid)
    if stat is None or stat.start_time != start_time:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
