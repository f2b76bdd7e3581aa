"""`python -m orchestrator_client` run as a user runs it: a process, its output and exit code."""

import json
import os
import pty
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from tests.client import dags
from tests.reference_payloads import DIRECTORY

pytestmark = pytest.mark.django_db

CONDITIONAL = str(DIRECTORY / "conditional_branching.json")


def cli(env: dict[str, str], *arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator_client", *arguments],
        cwd=settings.BASE_DIR,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_submit_and_wait_prints_the_final_status_and_exits_0(live_api):
    done = cli(live_api.env(), "submit", CONDITIONAL, "--params", '{"data": "yes"}', "--wait", "60", "--json")

    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"] == "COMPLETED" and final["node_statuses"]["false_branch"] == "SKIPPED"
    # The progress line, on stderr: a line per change when stderr is not a terminal.
    assert "COMPLETED: 4/4 nodes done, 3 completed, 1 skipped, 0 failed, 0 running" in done.stderr
    results = cli(live_api.env(), "results", final["execution_id"])
    assert results.returncode == 0
    assert json.loads(results.stdout)["outputs"]["start"] == {"data": "yes"}


def test_submit_prints_the_execution_id_and_status_watch_follows_it(live_api):
    submitted = cli(
        live_api.env(), "submit", "-", "--params", '{"data": "no"}', stdin=json.dumps(dags.conditional())
    )
    execution_id = submitted.stdout.strip()

    watched = cli(live_api.env(), "status", execution_id, "--watch")

    assert submitted.returncode == 0 and uuid.UUID(execution_id)
    assert watched.returncode == 0, watched.stderr
    last_table = watched.stdout.strip().split("\n\n")[-1].splitlines()
    assert last_table[0] == f"execution {execution_id} (Conditional Branching Demo): COMPLETED"
    assert last_table[1].split() == ["NODE", "STATE"]
    assert {tuple(line.split()) for line in last_table[2:6]} == {
        ("start", "COMPLETED"),
        ("is_yes", "COMPLETED"),
        ("true_branch", "SKIPPED"),
        ("false_branch", "COMPLETED"),
    }
    as_lines = cli(live_api.env(), "status", execution_id, "--watch", "--json")
    assert [json.loads(line)["status"] for line in as_lines.stdout.splitlines()] == ["COMPLETED"]


def test_on_a_terminal_the_progress_line_is_rewritten_in_place(live_api):
    terminal, terminal_side = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator_client", "submit", "-", "--wait", "60"],
        cwd=settings.BASE_DIR,
        env=live_api.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=terminal_side,
        text=True,
    )
    os.close(terminal_side)
    # Longer than one poll of the watch (2 s): a RUNNING line first, then the COMPLETED one.
    stdout, _ = process.communicate(json.dumps(dags.slow(3)), timeout=120)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the process has gone and everything it wrote was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)

    assert process.returncode == 0 and "(slow): COMPLETED" in stdout
    assert b"\r\x1b[KRUNNING: 0/1 nodes done" in shown
    assert shown.endswith(
        b"\r\x1b[KCOMPLETED: 1/1 nodes done, 1 completed, 0 skipped, 0 failed, 0 running\r\n"
    )


def test_a_failed_execution_exits_1_and_its_dead_letter_is_triaged(live_api):
    env = live_api.env()
    flaky = cli(env, "submit", "-", "--wait", stdin=json.dumps(dags.flaky()))
    assert flaky.returncode == 1, flaky.stderr
    execution_id = flaky.stdout.split()[1]
    assert "FAILED: 1/1 nodes done, 0 completed, 0 skipped, 1 failed" in flaky.stderr

    listed = cli(env, "dlq", "list", "--execution", execution_id, "--status", "open")
    (letter,) = json.loads(listed.stdout)
    retried = cli(env, "dlq", "retry", str(letter["id"]), "--note", "upstream fixed")
    again = cli(env, "status", execution_id, "--watch")  # it fails again
    (second,) = json.loads(cli(env, "dlq", "list", "--execution", execution_id, "--status", "OPEN").stdout)
    discarded = cli(env, "dlq", "discard", str(second["id"]), "--note", "known failure")

    assert (letter["node_id"], letter["status"]) == ("a", "OPEN")
    assert retried.returncode == 0 and json.loads(retried.stdout)["status"] == "RETRIED"
    assert again.returncode == 1 and "): FAILED" in again.stdout
    assert discarded.returncode == 0 and json.loads(discarded.stdout)["note"] == "known failure"


def test_retrigger_and_rerun_follow_the_execution_they_start(live_api):
    env = live_api.env()
    first = json.loads(
        cli(env, "submit", CONDITIONAL, "--params", '{"data": "yes"}', "--wait", "--json").stdout
    )

    retriggered = cli(
        env, "retrigger", first["execution_id"], "--params", '{"data": "no"}', "--wait", "--json"
    )
    slow = cli(env, "submit", "-", stdin=json.dumps(dags.slow(5))).stdout.strip()
    cli(env, "cancel", slow)
    rerun = cli(env, "rerun", slow, "--wait", "60")
    finished = cli(env, "rerun", slow)

    assert retriggered.returncode == 0, retriggered.stderr
    second = json.loads(retriggered.stdout)
    assert second["execution_id"] != first["execution_id"] and second["workflow_id"] == first["workflow_id"]
    assert second["node_statuses"]["false_branch"] == "COMPLETED"
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines()[0] == f"execution {slow} (slow): COMPLETED"
    assert finished.returncode == 1 and "(HTTP 409)" in finished.stderr


def test_submit_run_again_with_its_idempotency_key_starts_one_execution(live_api):
    key = ["--idempotency-key", f"nightly-{uuid.uuid4()}"]

    first = cli(live_api.env(), "submit", CONDITIONAL, "--params", '{"data": "yes"}', *key)
    again = cli(live_api.env(), "submit", CONDITIONAL, "--params", '{"data": "yes"}', *key)

    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert again.stdout == first.stdout


def test_waiting_too_long_exits_3_and_cancel_stops_it(live_api):
    env = live_api.env()
    slow = cli(env, "submit", "-", "--wait", "1", stdin=json.dumps(dags.slow(60)))
    execution_id = slow.stderr.splitlines()[0].removeprefix("execution ").removesuffix(": RUNNING")

    cancelled = cli(env, "cancel", execution_id)
    status = cli(env, "status", execution_id)

    assert slow.returncode == 3, slow.stderr
    assert "gave up waiting" in slow.stderr and "still RUNNING" in slow.stderr
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"execution {execution_id}: CANCELLED"
    assert status.returncode == 1 and "): CANCELLED" in status.stdout


def test_api_errors_exit_1_with_the_code_and_message_and_no_traceback(live_api):
    missing = str(uuid.uuid4())

    not_found = cli(live_api.env(), "status", missing)
    refused = cli(live_api.env("not-a-token"), "results", missing)
    invalid = cli(live_api.env(), "submit", "-", stdin=json.dumps(dags.cyclic()))
    forbidden = cli(live_api.env(live_api.user_token), "dlq", "list")

    assert not_found.returncode == 1
    assert not_found.stderr.startswith(f"error: not_found: no execution with id '{missing}' (HTTP 404)")
    assert refused.returncode == 1 and "error: authentication_failed:" in refused.stderr
    assert invalid.returncode == 1 and "error: cycle:" in invalid.stderr
    assert forbidden.returncode == 1 and "error: permission_denied:" in forbidden.stderr
    for done in (not_found, refused, invalid, forbidden):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_usage_errors_exit_2(live_api, tmp_path):
    no_settings = {name: value for name, value in os.environ.items() if not name.startswith("ORCHESTRATOR_")}
    not_json = tmp_path / "dag.json"
    not_json.write_text("{nodes: []")

    no_file = cli(live_api.env(), "submit")
    no_url = cli(no_settings, "status", str(uuid.uuid4()))
    bad_params = cli(live_api.env(), "submit", CONDITIONAL, "--params", "data=yes")
    bad_file = cli(live_api.env(), "submit", str(not_json))

    assert [no_file.returncode, no_url.returncode, bad_params.returncode, bad_file.returncode] == [2, 2, 2, 2]
    assert "no API url: pass --url or set ORCHESTRATOR_URL" in no_url.stderr
    assert "--params is not JSON" in bad_params.stderr and "dag.json is not JSON" in bad_file.stderr


def test_url_and_token_flags_override_the_environment(live_api):
    elsewhere = {**os.environ, "ORCHESTRATOR_URL": "http://127.0.0.1:9", "ORCHESTRATOR_TOKEN": "wrong"}

    done = cli(
        elsewhere,
        "--url",
        live_api.url,
        "--token",
        live_api.operator_token,
        "dlq",
        "list",
        "--status",
        "RETRIED",
    )

    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
