"""Celery 5 as the baseline: its own virtualenv (var/bench-venv), 3 worker processes, Redis db 15.

Workers run `--pool solo`, one process each: like `runworker`, a worker is one OS process and
there is no prefork parent/child pipe in the way of a no-op task. Broker and result backend are
the same Redis server as the engine, on a database number of their own.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import redis

from bench.engine_stack import redis_server_pid
from bench.peer import REPO, PeerStack
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


def celery_url(redis_url: str) -> str:
    """The engine's Redis server with another database number (BENCH_CELERY_REDIS_DB, default 15)."""
    db = os.environ.get("BENCH_CELERY_REDIS_DB", str(DEFAULT_DB))
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}", query=""))


class CeleryStack(PeerStack):
    """3 `celery worker --pool solo` processes; the shapes run in a client subprocess of the venv."""

    name = "celery"
    venv = VENV
    requirements = REQUIREMENTS
    client_module = "bench.celery_client"

    def __init__(self, supervisor: Supervisor, *, redis_url: str):
        super().__init__(supervisor)
        self.url = celery_url(redis_url)
        self.queue = f"bench-{os.getpid()}"
        self.redis_pid: int | None = None

    def env(self) -> dict:
        return {**super().env(), "BENCH_CELERY_URL": self.url, "BENCH_CELERY_QUEUE": self.queue}

    def start(self) -> None:
        celery = str(self.install().parent / "celery")
        self.redis_pid = redis_server_pid(redis.Redis.from_url(self.url))
        for i in range(WORKERS):
            worker = [celery, "-A", "bench.celery_app", "worker", "-Q", self.queue, "-n", f"bench{i + 1}@%h"]
            self.spawn_worker(i + 1, [*worker, *WORKER_FLAGS])
        self.run_client("ready", "--workers", str(WORKERS), timeout=120)

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
