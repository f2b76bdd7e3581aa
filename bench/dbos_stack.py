"""DBOS as the durable PostgreSQL-backed peer: its own virtualenv (var/dbos-venv), 3 worker
processes, a system database of its own (`bench_dbos`) on the engine's PostgreSQL server.

Every setting is DBOS's default: the queue is registered with no limits and DBOS's 1 s polling
interval, the workers' pools and executors are as DBOS sizes them, clients wait with
`get_result()` (which polls every second by default). DBOS commits each workflow's status when
it is enqueued, dequeued and finished, and each step's outcome before the next step runs.
"""

import subprocess
import time

from bench import procstat
from bench.engine_stack import StackError, postmaster_pid, recreate_database, with_database
from bench.peer import REPO, PeerStack
from bench.supervisor import Supervisor

VENV = REPO / "var" / "dbos-venv"
# 3.x: queues are registered in the system database (DBOS.register_queue), not constructed.
REQUIREMENTS = ["dbos>=3.4,<4"]
WORKERS = 3
DATABASE = "bench_dbos"
READY_LINE = b"bench dbos worker ready"
START_TIMEOUT = 90.0


class DbosStack(PeerStack):
    """3 `python -m bench.dbos_app worker` processes on a fresh `bench_dbos` system database."""

    name = "dbos"
    venv = VENV
    requirements = REQUIREMENTS
    client_module = "bench.dbos_client"

    def __init__(self, supervisor: Supervisor, *, database_url: str):
        super().__init__(supervisor)
        self.admin_database_url = database_url
        self.url = with_database(database_url, DATABASE)
        self.postmaster_pid: int | None = None

    def env(self) -> dict:
        return {**super().env(), "BENCH_DBOS_URL": self.url}

    def start(self) -> None:
        python = str(self.install())
        recreate_database(self.admin_database_url, DATABASE)
        self.postmaster_pid = postmaster_pid(self.url)
        self.run_app_once("prepare")
        for i in range(WORKERS):
            self.spawn_worker(i + 1, [python, "-m", "bench.dbos_app", "worker"])
        self.wait_for_workers()
        self.run_client("ready", timeout=120)

    def run_app_once(self, command: str) -> None:
        log = self.supervisor.log_path(f"dbos-{command}")
        with log.open("ab") as out:
            done = subprocess.run(
                [str(self.python), "-m", "bench.dbos_app", command],
                env=self.env(),
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )
        if done.returncode:
            raise StackError(f"bench.dbos_app {command} exited {done.returncode}; see {log}")

    def wait_for_workers(self) -> None:
        """Until every worker has launched DBOS (printed READY_LINE); a worker that exits fails the start."""
        logs = [self.supervisor.log_path(self.worker_name(i + 1)) for i in range(WORKERS)]
        deadline = time.monotonic() + START_TIMEOUT
        while not all(READY_LINE in log.read_bytes() for log in logs):
            exited = self.supervisor.exited()
            if exited:
                raise StackError(f"DBOS worker(s) exited during start-up: {exited}; see {logs[0].parent}")
            if time.monotonic() > deadline:
                raise StackError(f"DBOS workers not ready after {START_TIMEOUT:.0f}s; see {logs[0].parent}")
            time.sleep(0.1)

    def roles(self) -> dict[str, list[int]]:
        return {
            "worker": list(self.pids),
            "postgres": procstat.database_backends(self.postmaster_pid, DATABASE),
        }

    def describe(self) -> dict:
        """Where this stack lives, for the results file."""
        return {
            "database": DATABASE,
            "workers": WORKERS,
            "settings": "DBOS defaults",
            "requirements": REQUIREMENTS,
        }

    def cleanup(self, *, keep_state: bool) -> str | None:
        """The system database stays until the next run (for inspection), as the engine's does."""
        return None
