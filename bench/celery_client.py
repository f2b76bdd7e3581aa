"""The shapes on Celery canvas; runs inside var/bench-venv and prints one JSON object.

python -m bench.celery_client ready --workers 3
python -m bench.celery_client load --workflows 250 --clients 50
python -m bench.celery_client wide --size 500
python -m bench.celery_client deep --size 100
python -m bench.celery_client submit --size 1000
"""

import argparse
import json
import sys
import time

from celery import chain, chord

from bench.celery_app import make_app
from bench.closed_loop import run_closed_loop

TIMEOUT = 300.0


def noop(app):
    return app.signature("bench.noop", immutable=True)


def fan_out_in(app, width: int):
    """chord(`width` no-ops) -> join: the canvas twin of the engine's wide workflow."""
    return chord([noop(app) for _ in range(width)], app.signature("bench.join"))


def warm_up(app) -> None:
    chain(noop(app), noop(app)).apply_async().get(timeout=60)


def ready(workers: int) -> dict:
    """Wait until `workers` worker processes answer a ping and a chain runs end to end."""
    app = make_app()
    deadline = time.monotonic() + 90
    replies: list = []
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= workers:
            warm_up(app)
            return {"workers": len(replies)}
    raise SystemExit(f"only {len(replies)} of {workers} Celery workers answered")


def load(workflows: int, clients: int) -> dict:
    """`clients` threads, each with its own app: a two-task chain, then wait for its result."""

    def connect():
        app = make_app()
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
        app.backend.client.ping()
        return app

    def run_one(app, seconds_left: float) -> None:
        chain(noop(app), noop(app)).apply_async().get(timeout=seconds_left)

    return run_closed_loop(
        workflows=workflows, clients=clients, connect=connect, run_one=run_one, timeout=TIMEOUT
    )


def run_canvas(canvas_for, size: int) -> dict:
    app = make_app()
    warm_up(app)
    canvas = canvas_for(app, size)
    began = time.perf_counter()
    result = canvas.apply_async()
    submitted = time.perf_counter()
    try:
        result.get(timeout=TIMEOUT)
        status = "SUCCESS"
    except Exception as exc:  # reported, not raised: the suite records it as the shape's error
        status = f"{exc.__class__.__name__}: {exc}"
    return {
        "seconds": time.perf_counter() - began,
        "submit_seconds": submitted - began,
        "status": status,
        "extra_tasks": 2,  # the warm-up chain
    }


def deep_chain(app, length: int):
    return chain(*[noop(app) for _ in range(length)])


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.celery_client")
    parser.add_argument("shape", choices=["ready", "load", "wide", "deep"])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=250)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args(argv)
    if args.shape == "ready":
        return ready(args.workers)
    if args.shape == "load":
        return load(args.workflows, args.clients)
    if args.shape == "deep":
        return run_canvas(deep_chain, args.size)
    return run_canvas(fan_out_in, args.size)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
