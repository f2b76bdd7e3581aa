"""The engine's runner processes for one test, under a small supervisor.

Like systemd or Kubernetes would, the supervisor respawns a supervised runner that died (a test
kill -9s one, or a poison task kills it). Each runner's output, across respawns, goes to one log
file, attached to the report of a failing test.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.faults.servers import free_port
from tests.polling import poll_until

START_SECONDS = 60.0
STOP_SECONDS = 30.0
SUPERVISOR_TICK_SECONDS = 0.1
LOG_TAIL_LINES = 150
# Each runner prints "<role> <consumer> started" once its consumer groups exist; gunicorn
# says where it listens.
STARTED = re.compile(r"^(worker|orchestrator|reaper) \S+ started|Listening at: http", re.MULTILINE)
ROLES = {"runworker": "worker", "runorchestrator": "orchestrator", "runreaper": "reaper"}


def run_manage(env: dict[str, str], *arguments: str) -> str:
    """Run `manage.py <arguments>` to the end in `env`; its output (it must succeed)."""
    done = subprocess.run(
        manage(*arguments), cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def prepare_database(env: dict[str, str]) -> str:
    """Migrate the database `env` names and bootstrap it; returns the API token bootstrap made."""
    run_manage(env, "migrate", "--no-input", "-v0")
    return re.search(r"API token: (\w+)", run_manage(env, "bootstrap")).group(1)


def manage(*arguments: str) -> list[str]:
    """The command line of `manage.py <arguments>` with this interpreter."""
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), *arguments]


def api_command() -> list[str]:
    """The API's command line, the Dockerfile's CMD with this virtualenv's gunicorn."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return [gunicorn, "-c", str(settings.BASE_DIR / "gunicorn.conf.py"), "orchestrator_site.wsgi"]


@dataclass(eq=False)
class Runner:
    """One process role (`manage.py runworker ...`, gunicorn), possibly respawned several times."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    supervised: bool = True
    stopped: bool = False
    process: subprocess.Popen | None = None
    # Where the current incarnation's output starts in the log file.
    log_offset: int = 0
    # Exit codes of earlier incarnations, oldest first (a respawned runner has some).
    exits: list[int] = field(default_factory=list)

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: start #{len(self.exits) + 1}\n".encode())
            log.flush()
            self.log_offset = log.tell()
            self.process = subprocess.Popen(
                self.command,
                cwd=settings.BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def consumer(self) -> str:
        """Its consumer name in Redis and in TaskRun.worker (as workflows.runner names it)."""
        role = next(ROLES[word] for word in self.command if word in ROLES)
        return f"{role}@{socket.gethostname()}:{self.pid}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def started(self) -> bool:
        """Has the current incarnation announced itself?"""
        return STARTED.search(self.log(self.log_offset)) is not None

    def log(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        lines = self.log().splitlines()
        skipped = len(lines) - LOG_TAIL_LINES
        head = [f"... {skipped} earlier lines in {self.log_path}"] if skipped > 0 else []
        return "\n".join(head + lines[-LOG_TAIL_LINES:])


class Fleet:
    """The runners of one test: start them, signal them, respawn the dead, stop them all."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env  # the children's environment; a test may change it before starting runners
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.runners: list[Runner] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._supervise, name="fleet-supervisor", daemon=True).start()

    def start(
        self,
        name: str,
        *arguments: str,
        supervised: bool = True,
        command: list | None = None,
        env: dict[str, str] | None = None,
    ) -> Runner:
        """Spawn `manage.py <arguments>` (or another `command`) without waiting for it to be ready;
        `env` adds to the fleet's environment for this runner only (its respawns included)."""
        runner = Runner(
            name,
            command or manage(*arguments),
            {**self.env, **(env or {})},
            self.log_dir / f"{name}.log",
            supervised,
        )
        with self.lock:
            runner.spawn()
            self.runners.append(runner)
        return runner

    def start_api(self, *, workers: int = 2, env: dict[str, str] | None = None) -> tuple[Runner, str]:
        """gunicorn serving the API on a free port, for a test that drives it over real HTTP;
        returns the runner and its base URL. Started as the Dockerfile starts it: its settings
        from gunicorn.conf.py, the address and process count from the environment."""
        port = free_port()
        listen = {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
        api = self.start("api", command=api_command(), env={**listen, **(env or {})})
        return api, f"http://127.0.0.1:{port}"

    def start_engine(
        self,
        *,
        workers: int = 2,
        concurrency: int = 4,
        orchestrators: int = 1,
        reaper: bool = True,
        drain_timeout: float = 2.0,
    ) -> list[Runner]:
        """The usual cast, started together and ready when this returns."""
        worker = ["runworker", "--concurrency", str(concurrency), "--drain-timeout", str(drain_timeout)]
        started = [self.start(f"worker-{i}", *worker) for i in range(1, workers + 1)]
        started += [self.start(f"orchestrator-{i}", "runorchestrator") for i in range(1, orchestrators + 1)]
        if reaper:
            started.append(self.start("reaper", "runreaper"))
        self.wait_started(started)
        return started

    def role(self, prefix: str) -> list[Runner]:
        return [r for r in self.runners if r.name.startswith(prefix)]

    def by_pid(self, pid: int) -> Runner:
        matches = [r for r in self.runners if r.process is not None and r.pid == pid]
        assert matches, f"no runner of this test has pid {pid}"
        return matches[0]

    def wait_started(self, runners: list[Runner], timeout: float = START_SECONDS) -> None:
        def all_started() -> bool:
            for runner in runners:
                if not runner.supervised and not runner.alive():  # (a supervised one is respawned)
                    pytest.fail(f"{runner.name} exited with code {runner.process.returncode} while starting")
            return all(runner.started() for runner in runners)

        poll_until(all_started, what=f"{[r.name for r in runners]} to start", timeout=timeout)

    def kill(self, runner: Runner, signum: int = signal.SIGKILL) -> None:
        """Send a signal to the runner's current process (a supervised one is respawned if it dies)."""
        os.kill(runner.pid, signum)

    def kill_and_wait_respawned(self, runner: Runner) -> None:
        """kill -9 a supervised runner and wait until its successor is ready."""
        victim = runner.pid
        self.kill(runner, signal.SIGKILL)
        poll_until(
            lambda: runner.pid != victim and runner.started(),
            what=f"{runner.name} to be respawned",
            timeout=START_SECONDS,
        )

    def stop(self, runner: Runner, timeout: float = STOP_SECONDS) -> int | str:
        """SIGTERM and wait for the exit code; not respawned afterwards."""
        self._terminate(runner)
        return self._wait(runner, timeout)

    def stop_all(self, grace: dict[str, float] | None = None) -> dict[str, int | str]:
        """Stop every runner (all signalled at once, then waited for); exit code by name. With
        `grace` (seconds by runner name), each must exit within its own period of the signal, as
        a container's stop_grace_period allows it, or it is killed."""
        self.closed.set()
        booting = [r for r in self.runners if r.alive() and not r.started()]
        # A runner still booting has no SIGTERM handler yet: let it get there first.
        deadline = time.monotonic() + START_SECONDS
        while any(r.alive() and not r.started() for r in booting) and time.monotonic() < deadline:
            time.sleep(0.05)
        signalled = time.monotonic()
        for runner in self.runners:
            self._terminate(runner)
        if grace is None:
            return {runner.name: self._wait(runner, STOP_SECONDS) for runner in self.runners}
        return {
            runner.name: self._wait(runner, grace[runner.name], since=signalled) for runner in self.runners
        }

    def _terminate(self, runner: Runner) -> None:
        # Once only: a second SIGTERM could land after the interpreter dropped its handler.
        with self.lock:
            if runner.stopped:
                return
            runner.supervised, runner.stopped = False, True
            if runner.alive():
                os.kill(runner.pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
                runner.process.send_signal(signal.SIGTERM)

    @staticmethod
    def _wait(runner: Runner, timeout: float, *, since: float | None = None) -> int | str:
        """The exit code, waiting at most `timeout` seconds (from `since`, a monotonic time)."""
        left = timeout if since is None else max(0.0, since + timeout - time.monotonic())
        try:
            return runner.process.wait(timeout=left)
        except subprocess.TimeoutExpired:
            runner.process.kill()
            runner.process.wait()
            return f"killed after {timeout:.0f} s"

    def check_unsupervised_alive(self) -> None:
        """Fail at once when a runner nobody restarts has died (instead of at the deadline)."""
        dead = {
            r.name: r.process.returncode
            for r in self.runners
            if not r.supervised and not r.stopped and not r.alive()
        }
        if dead:
            pytest.fail(f"runner(s) exited during the test (exit codes): {dead}")

    def _supervise(self) -> None:
        while not self.closed.wait(SUPERVISOR_TICK_SECONDS):
            with self.lock:
                for runner in self.runners:
                    if runner.supervised and not runner.alive() and not self.closed.is_set():
                        runner.exits.append(runner.process.returncode)
                        runner.spawn()
