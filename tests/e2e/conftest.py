"""End-to-end fixtures: real `runworker` and `runorchestrator` processes against the test database.

The children are configured only through their environment (settings are read at process start):
pytest-django's test database, the same Redis, this test's stream prefix, short blocking reads so
SIGTERM is honoured quickly, and the test-only handlers. Each child's stdout and stderr go to one
log file, attached to the report of any failing phase of the test.
"""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from tests.databases import runner_database_environment

# Registers the test-only handlers in this process too, so the API accepts workflows using them.
from tests.e2e import handlers  # noqa: F401
from tests.e2e.client import WorkflowApi

WORKERS = 2
WORKER_CONCURRENCY = 8
ORCHESTRATORS = 2
RUNNER_BLOCK_MS = 200
START_SECONDS = 30.0
# A worker drains in-flight tasks on SIGTERM; tests leave none running, so this is ample.
STOP_SECONDS = 20.0
LOG_TAIL_LINES = 200

RUNNERS = pytest.StashKey[list["Runner"]]()


@dataclass
class Runner:
    """One child process and the file its output goes to."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        skipped = len(lines) - LOG_TAIL_LINES
        head = [f"... {skipped} earlier lines in {self.log_path}"] if skipped > 0 else []
        return "\n".join(head + lines[-LOG_TAIL_LINES:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the runners' logs to a failed setup, call or teardown report."""
    report = yield
    if report.failed:
        for runner in item.stash.get(RUNNERS, []):
            report.sections.append((f"runner log: {runner.name} (pid {runner.process.pid})", runner.log()))
    return report


def runner_environment(stream_prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        **runner_database_environment(),
        "REDIS_URL": settings.REDIS_URL,
        "STREAM_PREFIX": stream_prefix,
        "RUNNER_BLOCK_MS": str(RUNNER_BLOCK_MS),
        "HANDLER_MODULES": "tests.e2e.handlers",
        # The reference payloads name hosts that do not exist: answer offline, as `make run` does.
        "HANDLERS_OFFLINE": "1",
        # Without this the log file may miss the last lines of a child that had to be killed.
        "PYTHONUNBUFFERED": "1",
    }


def runner_commands() -> list[tuple[str, list[str]]]:
    worker = ["runworker", "--concurrency", str(WORKER_CONCURRENCY)]
    return [(f"worker-{i}", worker) for i in range(1, WORKERS + 1)] + [
        (f"orchestrator-{i}", ["runorchestrator"]) for i in range(1, ORCHESTRATORS + 1)
    ]


def start_runner(name: str, arguments: list[str], env: dict[str, str], log_dir: Path) -> Runner:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), *arguments],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Runner(name, process, log_path)


def wait_until_started(runners: list[Runner]) -> None:
    """Each command prints '... started' once its consumer groups exist; fail if one dies first."""
    deadline = time.monotonic() + START_SECONDS
    waiting = list(runners)
    while waiting:
        for runner in list(waiting):
            code = runner.process.poll()
            if code is not None:
                pytest.fail(f"{runner.name} exited with code {code} while starting")
            if " started" in runner.log_path.read_text(errors="replace"):
                waiting.remove(runner)
        if waiting and time.monotonic() > deadline:
            pytest.fail(f"not started after {START_SECONDS:.0f} s: {[r.name for r in waiting]}")
        time.sleep(0.05)


def check_runners_alive(runners: list[Runner]) -> None:
    dead = {r.name: r.process.returncode for r in runners if r.process.poll() is not None}
    if dead:
        pytest.fail(f"runner(s) exited during the test (exit codes): {dead}")


def stop_runners(runners: list[Runner]) -> dict[str, int | str]:
    """SIGTERM all, wait for a clean exit within the bound, kill what is left; exit code by name."""
    for runner in runners:
        if runner.process.poll() is None:
            runner.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    codes: dict[str, int | str] = {}
    for runner in runners:
        try:
            codes[runner.name] = runner.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            runner.process.kill()
            runner.process.wait()
            codes[runner.name] = f"killed after {STOP_SECONDS:.0f} s"
    return codes


@pytest.fixture
def runners(request, transactional_db, stream_prefix, tmp_path) -> list[Runner]:
    """2 workers (--concurrency 8) and 2 orchestrators, running until the test ends.

    Depends on `transactional_db` so the children are stopped before pytest-django flushes
    the database, and on `stream_prefix` so they are stopped before its keys are deleted.
    """
    env = runner_environment(stream_prefix)
    started: list[Runner] = []
    request.node.stash[RUNNERS] = started
    try:
        for name, arguments in runner_commands():
            started.append(start_runner(name, arguments, env, tmp_path))
        wait_until_started(started)
    except BaseException:
        stop_runners(started)
        raise
    yield started
    codes = stop_runners(started)
    assert all(code == 0 for code in codes.values()), f"runners did not exit cleanly on SIGTERM: {codes}"


@pytest.fixture
def api(runners, alice_client) -> WorkflowApi:
    """The REST API as alice (token auth), with the engine's processes running behind it."""
    return WorkflowApi(alice_client, check_alive=lambda: check_runners_alive(runners))
