"""Celery 5 as the baseline: its own virtualenv (var/bench-venv), 3 worker processes, Redis db 15.

Workers run `--pool solo`, one process each: like `runworker`, a worker is one OS process and
there is no prefork parent/child pipe in the way of a no-op task. Broker and result backend are
the same Redis server as the engine, on a database number of their own.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from bench.engine_stack import REPO, StackError, redis_server_pid
from bench.supervisor import Supervisor

VENV = REPO / "var" / "bench-venv"
# kombu 5.7 imports `packaging` in its Redis transport without declaring it.
REQUIREMENTS = ["celery>=5.3,<6", "redis>=5", "packaging"]
WORKERS = 3
DEFAULT_DB = 15
WORKER_FLAGS = [
    *("--pool", "solo", "--loglevel", "WARNING"),
    # No worker-to-worker chatter: the engine's runners do not talk to each other either.
    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
]


def ensure_venv(log: Path) -> Path:
    """Create var/bench-venv with Celery on first use; returns its python."""
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if marker.exists() and marker.read_text() == " ".join(REQUIREMENTS):
        return python
    print(f"creating {VENV} (pip install {' '.join(REQUIREMENTS)}) ...", file=sys.stderr, flush=True)
    with log.open("ab") as out:
        for command in (
            [sys.executable, "-m", "venv", str(VENV)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
        ):
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
            if done.returncode:
                raise StackError(f"{' '.join(command)} exited {done.returncode}; see {log}")
    marker.write_text(" ".join(REQUIREMENTS))
    return python


def celery_url(redis_url: str) -> str:
    """The engine's Redis server with another database number (BENCH_CELERY_REDIS_DB, default 15)."""
    db = os.environ.get("BENCH_CELERY_REDIS_DB", str(DEFAULT_DB))
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}", query=""))


class CeleryStack:
    """3 `celery worker --pool solo` processes; the shapes run in a client subprocess of the venv."""

    name = "celery"
    rss_roles = ("worker",)

    def __init__(self, supervisor: Supervisor, *, redis_url: str):
        self.supervisor = supervisor
        self.url = celery_url(redis_url)
        self.queue = f"bench-{os.getpid()}"
        self.python: Path | None = None
        self.pids: list[int] = []
        self.redis_pid: int | None = None

    def env(self) -> dict:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BENCH_CELERY_URL": self.url,
            "BENCH_CELERY_QUEUE": self.queue,
        }

    def start(self) -> None:
        self.python = ensure_venv(self.supervisor.log_path("bench-venv"))
        celery = str(self.python.parent / "celery")
        self.redis_pid = redis_server_pid(redis.Redis.from_url(self.url))
        for i in range(WORKERS):
            process = self.supervisor.spawn(
                f"celery-worker-{i + 1}",
                [
                    celery,
                    "-A",
                    "bench.celery_app",
                    "worker",
                    "-Q",
                    self.queue,
                    "-n",
                    f"bench{i + 1}@%h",
                    *WORKER_FLAGS,
                ],
                env=self.env(),
                cwd=REPO,
            )
            self.pids.append(process.pid)
        self.run_client("ready", "--workers", str(WORKERS), timeout=120)

    def run_client(self, *args: str, timeout: float = 600) -> dict:
        """Run one shape in the venv's python; its last stdout line is the JSON result."""
        began = time.monotonic()
        done = subprocess.run(
            [str(self.python), "-m", "bench.celery_client", *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with self.supervisor.log_path("celery-client").open("a") as log:
            log.write(f"$ celery_client {' '.join(args)} ({time.monotonic() - began:.1f}s)\n{done.stderr}")
        if done.returncode or not done.stdout.strip():
            raise StackError(f"celery_client {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def roles(self) -> dict[str, list[int]]:
        return {"worker": list(self.pids), "redis": [self.redis_pid] if self.redis_pid else []}

    def describe(self) -> dict:
        """Where this stack lives, for the results file."""
        return {"broker": self.url, "queue": self.queue, "workers": WORKERS, "pool": "solo"}

    def cleanup(self, *, keep_state: bool) -> str | None:
        """Delete the queue and the results this run left in the Celery database (nothing to keep)."""
        client = redis.Redis.from_url(self.url)
        patterns = [
            f"{self.queue}*",
            f"_kombu.binding.{self.queue}",
            f"_kombu.binding_permanent.{self.queue}",
            "celery-task-meta-*",
            "celery-taskset-meta-*",
            "chord-unlock-*",
        ]
        for pattern in patterns:
            keys = list(client.scan_iter(pattern, count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
        return None
