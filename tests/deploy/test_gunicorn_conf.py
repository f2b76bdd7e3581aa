"""gunicorn.conf.py: its settings from the environment, a graceful timeout that outlasts the
longest long poll, and access lines that are JSON whatever a client sends."""

import json
from datetime import timedelta
from types import SimpleNamespace

from tests.deploy.gunicorn_settings import gunicorn_settings


def test_defaults_serve_long_polls_and_let_them_finish_on_restart():
    config = gunicorn_settings({})
    assert config.address == [("127.0.0.1", 8000)]
    assert (config.workers, config.threads, config.worker_class_str) == (2, 32, "gthread")
    assert config.timeout == 60
    assert config.graceful_timeout == 40  # LONG_POLL_MAX_SECONDS (30) + 10
    assert config.accesslog == "-"


def test_settings_come_from_the_environment():
    config = gunicorn_settings(
        {
            "GUNICORN_BIND": "0.0.0.0:9000",
            "GUNICORN_WORKERS": "5",
            "GUNICORN_THREADS": "8",
            "GUNICORN_TIMEOUT": "90",
            "GUNICORN_KEEPALIVE": "75",
            "LONG_POLL_MAX_SECONDS": "60",
        }
    )
    assert config.address == [("0.0.0.0", 9000)]
    assert (config.workers, config.threads, config.timeout, config.keepalive) == (5, 8, 90, 75)
    assert config.graceful_timeout == 70
    assert gunicorn_settings({"GUNICORN_GRACEFUL_TIMEOUT": "120"}).graceful_timeout == 120
    assert gunicorn_settings({"GUNICORN_ACCESS_LOG": ""}).accesslog is None


def test_an_access_line_is_json_even_with_quotes_and_backslashes():
    config = gunicorn_settings({})
    logger = config.logger_class(config)
    environ = {
        "REMOTE_ADDR": "10.0.0.7",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/workflow/x?wait=5",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/api/v1/workflow/x",
        "QUERY_STRING": "wait=5",
        "HTTP_USER_AGENT": 'evil "agent" \\ with\ttab',
    }
    response = SimpleNamespace(status="200 OK", sent=123, headers=[])
    request = SimpleNamespace(headers=[("X-FORWARDED-FOR", "203.0.113.9")])
    atoms = logger.atoms_wrapper_class(
        logger.atoms(response, request, environ, timedelta(seconds=1, microseconds=5000))
    )

    line = json.loads(config.access_log_format % atoms)

    assert line == {
        "event": "http_request",
        "time": line["time"],
        "remote_addr": "10.0.0.7",
        "forwarded_for": "203.0.113.9",
        "method": "GET",
        "path": "/api/v1/workflow/x",
        "query": "wait=5",
        "status": 200,
        "response_bytes": "123",
        "duration_ms": 1005,
        "user_agent": 'evil "agent" \\ with\ttab',
    }
