"""The API's floor: CPU per request of gunicorn alone and of the Django API doing almost nothing,
under the load shape's 50 keep-alive clients, so the load targets can be set against what any
request costs before the engine does any work.

Starts gunicorn twice with gunicorn.conf.py (2 processes x 32 threads, as the bench): once with a
WSGI app that answers `{}`, once with the project, whose requests are an authenticated status
read of an execution that does not exist (token lookup, throttle, one indexed SELECT, a JSON 404).

    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... python -m bench.api_floor [-n 4500]
"""

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

from bench.engine_client import Http
from bench.engine_stack import REPO, free_port
from bench.procstat import RoleMeter
from bench.shapes import LOAD_CLIENTS

REQUESTS_PER_WORKFLOW = 3  # the load shape: submit, trigger, one long poll


def bare(environ, start_response):
    """gunicorn's own cost: no framework, no database."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def api_token() -> str:
    """A staff user's token, made through the ORM of the configured database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="apifloor", defaults={"is_staff": True})
    return Token.objects.get_or_create(user=user)[0].key


def measure(app: str, path: str, token: str, requests: int) -> tuple[float, float]:
    """(requests/s, CPU ms per request of gunicorn's processes) for `requests` GETs of `path`
    from LOAD_CLIENTS threads, after a warm-up that opens every thread's connections."""
    port = free_port()
    env = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1",
        "THROTTLE_READS": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(REPO / "gunicorn.conf.py"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
    ]
    server = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        base_url, left, lock = f"http://127.0.0.1:{port}", [requests], threading.Lock()

        def warm_up() -> None:  # opens every client's connection and every thread's resources
            with Http(base_url, token) as http:
                for _ in range(20):
                    http.request("GET", path)

        def client() -> None:
            with Http(base_url, token) as http:
                while True:
                    with lock:
                        if left[0] <= 0:
                            return
                        left[0] -= 1
                    http.request("GET", path)

        _run_clients(warm_up)
        meter = RoleMeter(lambda: {"api": [server.pid]}, rss_roles=())
        began_cpu, began = meter.cpu(), time.perf_counter()
        _run_clients(client)
        wall, cpu = time.perf_counter() - began, meter.cpu().seconds_since(began_cpu)["api"]
        return requests / wall, cpu * 1000 / requests
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run_clients(target) -> None:
    threads = [threading.Thread(target=target) for _ in range(LOAD_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with Http(f"http://127.0.0.1:{port}", "") as http:
                http.request("GET", "/")
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4500, help="timed requests per server")
    args = parser.parse_args()
    token, cores = api_token(), os.cpu_count() or 1
    rows = [
        ("gunicorn alone", "bench.api_floor:bare", "/"),
        ("Django API, a status 404", "orchestrator_site.wsgi", f"/api/v1/workflow/{uuid.uuid4()}"),
    ]
    for name, app, path in rows:
        rate, cpu_ms = measure(app, path, token, args.n)
        ceiling = cores * 1000 / (cpu_ms * REQUESTS_PER_WORKFLOW)
        print(
            f"{name}: {rate:.0f} requests/s, {cpu_ms:.2f} ms CPU per request; {REQUESTS_PER_WORKFLOW} per "
            f"workflow on {cores} cores and nothing else: <= {ceiling:.0f} workflows/s"
        )


if __name__ == "__main__":
    main()
