"""The README's 5-minute tour works as written.

Its last shell block is run with bash, as it stands in README.md, against a live stack: gunicorn
serving the API, and real workers, orchestrators and a reaper. `call` in the tour is curl with
--fail-with-body and the script runs under `set -euo pipefail`, so any HTTP error stops it. The
blocks before it (`make run`, TOKEN and API) are the reader's set-up: the test provides TOKEN and
API itself, and checks separately that the TOKEN line reads what `bootstrap` wrote.
"""

import os
import re
import subprocess
import sys
from io import StringIO

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from dlq.models import DeadLetter
from tests.e2e.conftest import (
    Runner,
    check_runners_alive,
    runner_environment,
    start_runner,
    wait_until_started,
)
from tests.faults.servers import free_port
from tests.polling import poll_until
from workflows.models import Execution, TaskRun

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.embedded]

TOUR_HEADING = "## A 5-minute tour"
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^([A-Z_]+)=", re.MULTILINE)
# The tour's long polls wait 30 s at most each; a healthy run takes a few seconds.
TOUR_SECONDS = 180
# Threads because a long poll holds one while it waits (as in `runstack` and the Dockerfile).
API_OPTIONS = ["--workers", "2", "--threads", "8"]


def tour_blocks() -> list[str]:
    """The shell blocks of the README's tour section, in order."""
    readme = (settings.BASE_DIR / "README.md").read_text()
    start = readme.index(TOUR_HEADING)
    end = readme.find("\n## ", start + len(TOUR_HEADING))
    return SHELL_BLOCK.findall(readme[start : end if end != -1 else None])


def setup_block() -> str:
    return next(block for block in tour_blocks() if re.search(r"^TOKEN=", block, re.MULTILINE))


def test_tour_setup_sets_exactly_what_the_test_provides():
    setup = setup_block()

    assert set(ASSIGNMENT.findall(setup)) == {"TOKEN", "API"}
    assert re.search(r"^API=http://127\.0\.0\.1:8000/api/v1$", setup, re.MULTILINE)
    assert "make run" in tour_blocks()[0]
    assert not {"TOKEN", "API"} & set(ASSIGNMENT.findall(tour_blocks()[-1])), "the test provides them"


def test_tour_setup_reads_the_token_that_make_run_printed(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    printed = StringIO()
    call_command("bootstrap", stdout=printed)
    token = re.search(r"API token: (\w+)", printed.getvalue()).group(1)
    token_line = next(line for line in setup_block().splitlines() if line.startswith("TOKEN="))

    done = subprocess.run(
        ["bash", "-c", f'set -euo pipefail\n{token_line}\nprintf %s "$TOKEN"'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == token


def start_api(port: int, env: dict[str, str], log_dir) -> Runner:
    """gunicorn as `make run` starts it, in the runners' environment."""
    log_path = log_dir / "api.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "orchestrator_site.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                *API_OPTIONS,
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Runner("api", process, log_path)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def live_api(runners, stream_prefix, tmp_path) -> str:
    """The API (gunicorn) and a reaper beside the e2e runners; the API's base URL.

    Both join the `runners` list, so that fixture stops them with the others (and expects a clean
    exit) and a failing test's report carries their logs.
    """
    env = runner_environment(stream_prefix)
    reaper = start_runner("reaper", ["runreaper"], env, tmp_path)
    runners.append(reaper)
    port = free_port()
    runners.append(start_api(port, env, tmp_path))
    wait_until_started([reaper])
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        check_runners_alive(runners)
        return answers(f"{base}/health")

    poll_until(up, what="the API to answer /health")
    return base


def test_readme_tour_runs_as_written(live_api, runners, operator):
    token, _ = Token.objects.get_or_create(user=operator)
    tour = tour_blocks()[-1]

    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + tour],
        cwd=settings.BASE_DIR,
        env={**os.environ, "TOKEN": token.key, "API": f"{live_api}/api/v1"},
        capture_output=True,
        text=True,
        timeout=TOUR_SECONDS,
    )

    assert done.returncode == 0, f"the tour failed\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    check_runners_alive(runners)
    executions = {e.workflow.name: e for e in Execution.objects.select_related("workflow")}
    assert {name: e.status for name, e in executions.items()} == {
        "Conditional Branching Demo": Execution.Status.COMPLETED,
        "flaky": Execution.Status.FAILED,
        "slow": Execution.Status.CANCELLED,
    }
    branches = dict(
        TaskRun.objects.filter(execution=executions["Conditional Branching Demo"]).values_list(
            "node_id", "status"
        )
    )
    assert branches["true_branch"] == TaskRun.Status.COMPLETED
    assert branches["false_branch"] == TaskRun.Status.SKIPPED
    letters = DeadLetter.objects.filter(execution_id=executions["flaky"].id).order_by("id")
    assert [letter.status for letter in letters] == [DeadLetter.Status.RETRIED, DeadLetter.Status.DISCARDED]
    assert [letter.note for letter in letters] == ["upstream fixed", "known failure"]
    # What the comments in the tour say the answers show.
    for shown in ['"status":"COMPLETED"', '"status":"FAILED"', '"status":"RETRIED"', '"status":"DISCARDED"']:
        assert shown in done.stdout, shown
    assert '"status":"CANCELLED"' in done.stdout
    assert '"workflow-submit":' in done.stdout  # the API root
