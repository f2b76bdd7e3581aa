"""docs/client.md's two tours, run as written against the live API: the Python one and the shell one."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

DOCUMENT = Path(settings.BASE_DIR) / "docs" / "client.md"
TOUR_SECONDS = 120


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOCUMENT.read_text(), re.MULTILINE | re.DOTALL)


def run(command: list[str], live_api) -> subprocess.CompletedProcess:
    # `python` in the shell tour is this interpreter, which has httpx.
    path = f"{Path(sys.executable).parent}:{live_api.env()['PATH']}"
    return subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        env={**live_api.env(), "PATH": path},
        capture_output=True,
        text=True,
        timeout=TOUR_SECONDS,
    )


def test_the_python_tour_runs_as_written(live_api):
    tour = next(block for block in code_blocks("python") if "client.submit(dag)" in block)

    done = run([sys.executable, "-c", tour], live_api)

    assert done.returncode == 0, f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert lines[0].startswith("COMPLETED {'start': 'COMPLETED'") and "'false_branch': 'SKIPPED'" in lines[0]
    assert lines[-1] == "CANCELLED"


def test_the_shell_tour_runs_as_written(live_api):
    tour = next(block for block in code_blocks("sh") if "orc() {" in block)

    done = run(["bash", "-c", "set -euo pipefail\n" + tour], live_api)

    assert done.returncode == 0, f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.stdout.count("exit code 1") == 2 and done.stdout.count("exit code 3") == 1
    assert '"status": "DISCARDED"' in done.stdout and done.stdout.rstrip().endswith(": CANCELLED")
