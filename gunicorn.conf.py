"""gunicorn's settings for the API, read from the environment with these defaults.

Every way the API is started uses this file (`gunicorn -c gunicorn.conf.py orchestrator_site.wsgi`):
the Dockerfile, docker-compose.yml, `manage.py runstack`, the bench and the production smoke test.
A flag on the command line overrides the value set here (runstack passes --bind and --workers).
"""

import json
import math
import os
from pathlib import Path

from gunicorn.glogging import Logger, SafeAtoms


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


bind = os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"
# Processes: about one per core the API may use. Threads: a long poll holds one while it waits,
# and LONG_POLL_MAX_PER_PROCESS (24) keeps some of these 32 free for other requests.
workers = _env_int("GUNICORN_WORKERS", 2)
threads = _env_int("GUNICORN_THREADS", 32)
worker_class = "gthread"
# With threads, `timeout` is how long a worker process may stay silent (its main loop stuck)
# before the arbiter kills it; a slow request in a thread does not count against it.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
# SIGTERM lets requests in flight finish for this long. The longest request is a long poll of
# LONG_POLL_MAX_SECONDS (the same variable Django reads, default 30): wait that plus a margin,
# so a rolling restart answers every poll instead of cutting it.
graceful_timeout = _env_int(
    "GUNICORN_GRACEFUL_TIMEOUT", math.ceil(_env_float("LONG_POLL_MAX_SECONDS", 30.0)) + 10
)
# Above a load balancer's idle timeout would be wrong; below it costs a reconnect now and then.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
# Workers' heartbeat files on a tmpfs when there is one: an overlay filesystem can stall them.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108  # nosec B108  # gunicorn's documented choice for containers

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# One JSON object per request, like the application's structlog lines (values JSON-escaped by
# JsonAccessLogger below; status and duration are numbers).
access_log_format = (
    json.dumps(
        {
            "event": "http_request",
            "time": "%(t)s",
            "remote_addr": "%(h)s",
            "forwarded_for": "%({x-forwarded-for}i)s",
            "method": "%(m)s",
            "path": "%(U)s",
            "query": "%(q)s",
            "status": "__STATUS__",
            "response_bytes": "%(b)s",
            "duration_ms": "__DURATION__",
            "user_agent": "%(a)s",
        }
    )
    .replace('"__STATUS__"', "%(s)s")
    .replace('"__DURATION__"', "%(M)s")
)


class JsonEscapedAtoms(SafeAtoms):
    """gunicorn escapes only double quotes in a log line's values; JSON needs backslashes and
    control characters escaped too. Escaped when the format reads a value, not for every header
    and environ entry gunicorn collects (28 µs a line before, 10 µs now)."""

    def __init__(self, atoms):
        dict.__init__(self, atoms)

    def __getitem__(self, key):
        value = super().__getitem__(key)
        return json.dumps(value)[1:-1] if isinstance(value, str) else value


class JsonAccessLogger(Logger):
    """gunicorn's logger, with access log values escaped for the JSON format above."""

    atoms_wrapper_class = JsonEscapedAtoms


logger_class = JsonAccessLogger
