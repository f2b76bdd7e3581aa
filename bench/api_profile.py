"""In-process profile of the load shape's two POSTs: submit a two-node workflow, trigger it.

Runs the whole Django stack (middleware, DRF, services) through the test client against the
configured database and Redis, and prints SQL statements and CPU milliseconds per request.

    DATABASE_URL=... REDIS_URL=... STREAM_PREFIX=apiprof python -m bench.api_profile [-n 500] [--profile]
"""

import argparse
import cProfile
import os
import pstats
import statistics
import time

import django
import psycopg

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.workloads import two_node  # noqa: E402
from workflows import streams  # noqa: E402


def api_client() -> Client:
    """A client authenticated like the benchmark: the bootstrap-style staff user's token."""
    user, _ = get_user_model().objects.get_or_create(username="apiprof", defaults={"is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="127.0.0.1")


def submit_and_trigger(client: Client, index: int, cpu: dict[str, list[float]]) -> None:
    began = time.process_time()
    response = client.post("/api/v1/workflow", two_node(index), content_type="application/json")
    cpu["submit"].append(time.process_time() - began)
    assert response.status_code == 201, response.content
    execution_id = response.json()["execution_id"]
    began = time.process_time()
    response = client.post(f"/api/v1/workflow/trigger/{execution_id}", {}, content_type="application/json")
    cpu["trigger"].append(time.process_time() - began)
    assert response.status_code == 202, response.content


class RoundTrips:
    """Counts what a request sends to PostgreSQL: statements (ORM, raw and psycopg cursors alike,
    BEGIN and COMMIT included) and round trips (waits for the server: pipelining shares them)."""

    def __init__(self):
        self.statements: list[str] = []
        self.round_trips = 0

    def __enter__(self):
        original_execute, original_wait, original_command = (
            psycopg.Cursor.execute,
            psycopg.Connection.wait,
            psycopg.Connection._exec_command,
        )

        def execute(cursor, query, *args, **kwargs):
            self.statements.append(str(query)[:150])
            return original_execute(cursor, query, *args, **kwargs)

        def wait(connection, *args, **kwargs):
            self.round_trips += 1
            return original_wait(connection, *args, **kwargs)

        def command(connection, command, *args, **kwargs):
            self.statements.append(bytes(command).decode())
            return original_command(connection, command, *args, **kwargs)

        self.restore = lambda: (
            setattr(psycopg.Cursor, "execute", original_execute),
            setattr(psycopg.Connection, "wait", original_wait),
            setattr(psycopg.Connection, "_exec_command", original_command),
        )
        psycopg.Cursor.execute, psycopg.Connection.wait, psycopg.Connection._exec_command = (
            execute,
            wait,
            command,
        )
        return self

    def __exit__(self, *exc):
        self.restore()


def count_queries(client: Client) -> None:
    with RoundTrips() as submit_trips:
        response = client.post("/api/v1/workflow", two_node(0), content_type="application/json")
    execution_id = response.json()["execution_id"]
    with RoundTrips() as trigger_trips:
        client.post(f"/api/v1/workflow/trigger/{execution_id}", {}, content_type="application/json")
    for name, trips in (("submit", submit_trips), ("trigger", trigger_trips)):
        print(f"{name}: {len(trips.statements)} SQL statements, {trips.round_trips} round trips")
        for statement in trips.statements:
            print("   ", statement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="submit+trigger pairs to time")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed loop")
    args = parser.parse_args()
    client = api_client()
    streams.get_streams().ensure_groups()
    for index in range(50):  # warm up: imports, URL resolver, compiled regexes, connection
        submit_and_trigger(client, index, {"submit": [], "trigger": []})
    count_queries(client)
    cpu: dict[str, list[float]] = {"submit": [], "trigger": []}
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    for index in range(args.n):
        submit_and_trigger(client, index, cpu)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)
    for name, seconds in cpu.items():
        print(
            f"{name}: median {statistics.median(seconds) * 1000:.2f} ms CPU, "
            f"mean {statistics.fmean(seconds) * 1000:.2f} ms over {len(seconds)}"
        )
    redis = streams.redis_client()
    keys = list(redis.scan_iter(f"{settings.STREAM_PREFIX}:*", count=1000))
    if keys:
        redis.delete(*keys)


if __name__ == "__main__":
    main()
