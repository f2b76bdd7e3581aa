"""Throwaway Redis and PostgreSQL servers on free ports, for the tests that stop or restart one.

The shared servers on 6379 and 5432 are never touched: a test that needs to take a server away
starts its own here, and stops it (and deletes its files) when it ends.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

START_SECONDS = 30.0
POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server of its own; `restart()` keeps its data only with appendonly."""

    directory: Path
    appendonly: bool
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not on PATH")
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--dir",
                    str(self.directory),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = self.client()
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.log_path}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        """SHUTDOWN: with appendonly the data is flushed to disk first; without, it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a paused server could not answer SHUTDOWN
        client = self.client()
        try:
            client.shutdown(nosave=not self.appendonly)
        except redis.ConnectionError:
            pass  # already closing
        finally:
            client.close()
        try:
            self.process.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port and directory."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections and accepts new ones (the kernel does), but
        answers nothing, as a hung Redis does; clients wait out their timeouts."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the server answers again, starting with what it was sent meanwhile."""
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A client of the test's own, outside the engine's connection pools."""
        return redis.Redis.from_url(self.url)


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb, pg_ctl), trust auth, superuser `postgres`.

    PostgreSQL refuses to run as root, so under root the cluster runs as the `postgres` user,
    in a directory of its own outside pytest's root-only temporary tree.
    """

    def __init__(self) -> None:
        self.bin_dir = next((d for d in POSTGRES_BIN_DIRS if (d / "initdb").exists()), None)
        if self.bin_dir is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.run_as: list[str] = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run initdb as")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.directory = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
        if owner is not None:
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.port = free_port()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log_path), "-w", "start")

    def stop(self) -> None:
        """Fast shutdown: every client connection is cut, as in a real restart."""
        if (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg(self, program: str, *arguments: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / program), *arguments],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )
