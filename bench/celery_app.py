"""The Celery 5 side of the comparison: one app, no-op tasks, Redis as broker and result backend.

Imported only inside var/bench-venv (celery is not a project dependency): by the workers
(`celery -A bench.celery_app worker`) and by `bench.celery_client`.
"""

import os

from celery import Celery


def noop(*args, **kwargs) -> dict:
    """The Celery twin of the engine's `input` handler: returns at once."""
    return {}


def join(results: list) -> dict:
    """The chord body: receives every header result, like the engine's `output` join node."""
    return {"inputs": len(results)}


def make_app() -> Celery:
    """A fresh app (one per client thread, as each engine client has its own httpx.Client)."""
    url = os.environ["BENCH_CELERY_URL"]
    app = Celery("bench", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_default_queue=os.environ.get("BENCH_CELERY_QUEUE", "bench"),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name="bench.noop")(noop)
    app.task(name="bench.join")(join)
    return app


app = make_app()
