"""What the peers from outside the project (Celery, DBOS) share: a virtualenv of their own under
var/, created on first use, worker processes started from it, and the shapes run by a client
module in it that prints one JSON object.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.engine_stack import REPO, StackError
from bench.supervisor import Supervisor


def ensure_venv(venv: Path, requirements: list[str], log: Path) -> Path:
    """Create `venv` with `requirements` on first use (again when they change); returns its python."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == " ".join(requirements):
        return python
    print(f"creating {venv} (pip install {' '.join(requirements)}) ...", file=sys.stderr, flush=True)
    with log.open("ab") as out:
        for command in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        ):
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=600, check=False)
            if done.returncode:
                raise StackError(f"{' '.join(command)} exited {done.returncode}; see {log}")
    marker.write_text(" ".join(requirements))
    return python


class PeerStack:
    """A peer's processes run from its own venv; each shape is one run of its client module.

    Subclasses set `venv`, `requirements`, `client_module`, and start their workers in `start`.
    """

    name = ""
    rss_roles = ("worker",)
    venv: Path
    requirements: list[str]
    client_module = ""

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.python: Path | None = None
        self.pids: list[int] = []

    def env(self) -> dict:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    def install(self) -> Path:
        self.python = ensure_venv(self.venv, self.requirements, self.supervisor.log_path(self.venv.name))
        return self.python

    def spawn_worker(self, index: int, argv: list[str]) -> None:
        process = self.supervisor.spawn(self.worker_name(index), argv, env=self.env(), cwd=REPO)
        self.pids.append(process.pid)

    def worker_name(self, index: int) -> str:
        """The worker's name in the supervisor, and its log's (`<name>.log`)."""
        return f"{self.name}-worker-{index}"

    def run_client(self, *args: str, timeout: float = 600) -> dict:
        """Run one shape in the venv's python; its last stdout line is the JSON result."""
        began = time.monotonic()
        done = subprocess.run(
            [str(self.python), "-m", self.client_module, *args],
            env=self.env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        label = self.client_module.rsplit(".", 1)[-1]
        with self.supervisor.log_path(label.replace("_", "-")).open("a") as log:
            log.write(f"$ {label} {' '.join(args)} ({time.monotonic() - began:.1f}s)\n{done.stderr}")
        if done.returncode or not done.stdout.strip():
            raise StackError(f"{label} {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
