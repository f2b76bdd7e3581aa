"""`python -m orchestrator_client`: submit, watch and triage workflows from a shell.

Data (results, dead letters, `--json`) goes to stdout as JSON, so scripts can pipe it; progress
and errors go to stderr. Exit codes: 0 completed or done, 1 the execution failed, was cancelled
or timed out, or the API refused, 2 usage error, 3 gave up waiting.
"""

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from orchestrator_client.client import Client
from orchestrator_client.connection import TOKEN_VARIABLE, URL_VARIABLE
from orchestrator_client.errors import ApiError, OrchestratorError, WaitTimedOut
from orchestrator_client.models import ExecutionStatus

DONE, FAILED, GAVE_UP = 0, 1, 3  # 2, a usage error, is argparse's
# Short long polls while someone watches: a poll answers at once when the execution ends, and
# returning every few seconds lets the display move while it runs.
WATCH_POLL_SECONDS = 2.0


class UsageError(Exception):
    """A bad argument found after parsing (an unreadable file, params that are not JSON)."""


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. Every failure is a line on stderr, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, variable in (("url", URL_VARIABLE), ("token", TOKEN_VARIABLE)):
        if not (getattr(args, option) or os.environ.get(variable)):
            parser.error(f"no API {option}: pass --{option} or set {variable}")
    try:
        with Client(args.url, args.token) as client:
            return args.command(client, args)
    except UsageError as exc:
        parser.error(str(exc))
    except WaitTimedOut as exc:
        print(f"gave up waiting: {exc}", file=sys.stderr)
        return GAVE_UP
    except ApiError as exc:
        details = f" {json.dumps(exc.details)}" if exc.details else ""
        print(f"error: {exc.code}: {exc.message} (HTTP {exc.status}){details}", file=sys.stderr)
        return FAILED
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The commands and their options; each subcommand sets `command`, the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator_client",
        description="Submit, watch and triage workflows through the orchestrator's REST API.",
        epilog="exit codes: 0 completed or done, 1 failed/cancelled/timed out or API error, "
        "2 usage error, 3 gave up waiting",
    )
    parser.add_argument(
        "--url", help=f"the API's base URL, e.g. http://127.0.0.1:8000 (default: ${URL_VARIABLE})"
    )
    parser.add_argument("--token", help=f"an API token (default: ${TOKEN_VARIABLE})")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="submit a workflow file and trigger it")
    submit.add_argument("file", type=Path, help="the workflow's JSON document ('-' for stdin)")
    _params_option(submit)
    _follow_options(submit, "submits and triggers only once")
    submit.set_defaults(command=submit_command)

    rerun = commands.add_parser(
        "rerun", help="run a failed, timed-out or cancelled execution again from its failure"
    )
    rerun.add_argument("execution_id")
    _follow_options(rerun, "re-runs only once")
    rerun.set_defaults(command=rerun_command)

    retrigger = commands.add_parser("retrigger", help="start a new execution of an execution's workflow")
    retrigger.add_argument("execution_id")
    _params_option(retrigger)
    _follow_options(retrigger, "starts only one execution")
    retrigger.set_defaults(command=retrigger_command)

    status = commands.add_parser("status", help="an execution's status and node states")
    status.add_argument("execution_id")
    status.add_argument("--watch", action="store_true", help="refresh until the execution ends")
    status.add_argument("--timeout", type=float, help="with --watch: give up after this many seconds")
    status.add_argument("--json", action="store_true", help="the status as JSON")
    status.set_defaults(command=status_command)

    results = commands.add_parser("results", help="the outputs of the completed nodes, as JSON")
    results.add_argument("execution_id")
    results.set_defaults(command=results_command)

    cancel = commands.add_parser("cancel", help="cancel an execution")
    cancel.add_argument("execution_id")
    cancel.set_defaults(command=cancel_command)

    dlq = commands.add_parser("dlq", help="dead letters (operators)")
    dlq_commands = dlq.add_subparsers(title="dead letters", required=True, metavar="ACTION")
    listing = dlq_commands.add_parser("list", help="dead letters as JSON, newest first")
    listing.add_argument("--status", help="OPEN, RETRIED or DISCARDED")
    listing.add_argument("--handler")
    listing.add_argument("--category")
    listing.add_argument("--execution", help="an execution id")
    listing.set_defaults(command=dlq_list_command)
    for name, verb in (("retry", "run its task again"), ("discard", "close it without running it")):
        action = dlq_commands.add_parser(name, help=f"{verb}; prints the dead letter as JSON")
        action.add_argument("letter_id", type=int)
        action.add_argument("--note", default="", help="why, kept with the dead letter")
        action.set_defaults(command=dlq_retry_command if name == "retry" else dlq_discard_command)
    return parser


def _params_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--params", default="{}", help='trigger params as JSON, e.g. \'{"data": "yes"}\'')


def _follow_options(command: argparse.ArgumentParser, once: str) -> None:
    """--wait, --json and --idempotency-key, for the commands that start an execution."""
    command.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=float("inf"),
        metavar="SECONDS",
        help="wait until the execution ends (at most SECONDS) and print its final status",
    )
    command.add_argument("--idempotency-key", help=f"the command run again with the same key {once}")
    command.add_argument("--json", action="store_true", help="with --wait: the final status as JSON")


def submit_command(client: Client, args: argparse.Namespace) -> int:
    """Submit and trigger; with --wait, follow it to the end and exit by how it ended."""
    dag, params = _read_json_file(args.file), _parse_json(args.params, "--params")
    key = args.idempotency_key
    submitted = client.submit(dag, idempotency_key=key)
    # The same command run again with the same key replays both answers instead of failing on
    # the second trigger (a key names one request: the trigger gets a key of its own).
    triggered = client.trigger(submitted.execution_id, params, idempotency_key=key and f"{key}/trigger")
    return _follow(client, triggered.execution_id, triggered.status, args)


def rerun_command(client: Client, args: argparse.Namespace) -> int:
    """Re-run from the failure, in place; with --wait, follow it to the end."""
    rerun = client.rerun(args.execution_id, idempotency_key=args.idempotency_key)
    return _follow(client, rerun.execution_id, rerun.status, args)


def retrigger_command(client: Client, args: argparse.Namespace) -> int:
    """A new execution of the same workflow; prints its id, or with --wait follows it."""
    params = _parse_json(args.params, "--params")
    started = client.retrigger(args.execution_id, params, idempotency_key=args.idempotency_key)
    return _follow(client, started.execution_id, started.status, args)


def _follow(client: Client, execution_id: str, status: str, args: argparse.Namespace) -> int:
    """The execution just started: its id on stdout, or with --wait its final status, and the
    exit code by how it ended."""
    print(f"execution {execution_id}: {status}", file=sys.stderr)
    if args.wait is None:
        print(execution_id)
        return DONE
    timeout = None if args.wait == float("inf") else args.wait
    with ProgressLine(sys.stderr) as progress:
        final = client.wait(execution_id, timeout, on_progress=progress, poll_seconds=WATCH_POLL_SECONDS)
    if args.json:
        print_json(final)
    else:
        print(status_table(final))
    return exit_code(final)


def status_command(client: Client, args: argparse.Namespace) -> int:
    """The status once, or with --watch every change until the end."""
    if not args.watch:
        current = client.status(args.execution_id)
        if args.json:
            print_json(current)
        else:
            print(status_table(current))
        return exit_code(current)
    show: Callable[[ExecutionStatus], object] = print_json_line if args.json else LiveTable(sys.stdout)
    final = client.wait(args.execution_id, args.timeout, on_progress=show, poll_seconds=WATCH_POLL_SECONDS)
    return exit_code(final)


def results_command(client: Client, args: argparse.Namespace) -> int:
    return print_json(client.results(args.execution_id))


def cancel_command(client: Client, args: argparse.Namespace) -> int:
    cancelled = client.cancel(args.execution_id)
    print(f"execution {cancelled.execution_id}: {cancelled.status}")
    return DONE


def dlq_list_command(client: Client, args: argparse.Namespace) -> int:
    letters = client.dead_letters(
        status=args.status, handler=args.handler, category=args.category, execution=args.execution
    )
    return print_json(list(letters))


def dlq_retry_command(client: Client, args: argparse.Namespace) -> int:
    return print_json(client.dead_letter_retry(args.letter_id, note=args.note))


def dlq_discard_command(client: Client, args: argparse.Namespace) -> int:
    return print_json(client.dead_letter_discard(args.letter_id, note=args.note))


def exit_code(status: ExecutionStatus) -> int:
    """0 unless the execution ended any other way than COMPLETED."""
    return FAILED if status.finished and not status.succeeded else DONE


def print_json(data: Any) -> int:
    print(json.dumps(_plain(data), indent=2, default=str))
    return DONE


def print_json_line(data: Any) -> None:
    """One compact document per line: a watch's statuses as JSON Lines."""
    print(json.dumps(_plain(data), default=str), flush=True)


def _plain(data: Any) -> Any:
    if dataclasses.is_dataclass(data):
        return {field.name: _plain(getattr(data, field.name)) for field in dataclasses.fields(data)}
    if isinstance(data, list):
        return [_plain(item) for item in data]
    if isinstance(data, datetime):
        return data.isoformat()
    return data


def progress_summary(status: ExecutionStatus) -> str:
    """`RUNNING: 3/7 nodes done, 2 completed, 1 skipped, 0 failed, 2 running`."""
    counts = status.progress
    line = (
        f"{status.status}: {counts.done}/{counts.total} nodes done, {counts.completed} completed, "
        f"{counts.skipped} skipped, {counts.failed} failed, {counts.running} running"
    )
    return line + (f", {counts.cancelled} cancelled" if counts.cancelled else "")


def status_table(status: ExecutionStatus) -> str:
    """The execution, then one line per node with its state (the worker of a running one)."""
    width = max((len(node) for node in status.node_statuses), default=4)
    lines = [f"execution {status.execution_id} ({status.workflow_name}): {status.status}"]
    lines.append(f"  {'NODE':<{width}}  STATE")
    for node, state in status.node_statuses.items():
        running = status.running.get(node)
        lines.append(f"  {node:<{width}}  {state}" + (f"  on {running.worker}" if running else ""))
    lines.append(progress_summary(status))
    if status.error:
        lines.append(f"error: {json.dumps(status.error)}")
    return "\n".join(lines)


class ProgressLine:
    """One progress line on `stream`: rewritten in place on a terminal (and ended when the wait
    is over, however it ends), one line per change elsewhere (a log file, a CI job)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.last = ""

    def __enter__(self) -> "ProgressLine":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.last and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()

    def __call__(self, status: ExecutionStatus) -> None:
        line = progress_summary(status)
        if line == self.last:
            return
        self.last = line
        self.stream.write(f"\r\x1b[K{line}" if self.stream.isatty() else line + "\n")
        self.stream.flush()


class LiveTable:
    """The status table, redrawn in place on a terminal; printed again on each change elsewhere."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.last = ""

    def __call__(self, status: ExecutionStatus) -> None:
        table = status_table(status)
        if table == self.last:
            return
        self.last = table
        if self.stream.isatty():
            self.stream.write("\x1b[H\x1b[J" + table + "\n")  # home, clear, draw
        else:
            self.stream.write(table + "\n\n")
        self.stream.flush()


def _read_json_file(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return _parse_json(text, str(path))


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None
