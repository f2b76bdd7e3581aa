"""API throttles per user, shared by every API process through Redis: scopes `submit`, `trigger`,
`reads` and `long_poll`, RateLimit-* headers on every answer of a throttled scope, 429 `throttled`
with Retry-After past the limit, fail open when Redis is unreachable; and failed token
authentications bounded per client address."""

import pytest
import redis
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.test import APIClient
from structlog.testing import CapturingLogger

from orchestrator_site.settings import env_rate
from tests.conftest import token_client
from workflows import request_limits
from workflows.api.authentication import CachedTokenAuthentication
from workflows.request_limits import Limit, Rate
from workflows.streams import Streams

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ONE_NODE = {"name": "throttled", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}
# A fixed clock, 20 s into a minute: windows of a minute reset in 40 s.
NOW = 1_800_000_000.0 + 20


@pytest.fixture(autouse=True)
def own_streams(streams):
    """Counters live under the test's own prefix: no other test (or run) shares them."""
    return streams


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(request_limits, "clock", lambda: clock["now"])
    return clock


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rates(settings):
    """Set the throttle rates of this test (scopes left out are not throttled)."""

    def set_rates(**scopes):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}

    return set_rates


def submit(client) -> dict:
    response = client.post("/api/v1/workflow", ONE_NODE, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_throttled(response, scope: str) -> dict:
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["details"]["scope"] == scope
    assert 1 <= int(response["Retry-After"]) == error["details"]["retry_after"]
    return error


def limit_headers(response) -> tuple[str | None, str | None, str | None]:
    return (
        response.get("RateLimit-Limit"),
        response.get("RateLimit-Remaining"),
        response.get("RateLimit-Reset"),
    )


# --- scopes and limits -----------------------------------------------------------------------


def test_submits_past_the_limit_are_refused_with_429_and_retry_after(alice_client, rates):
    rates(submit="3/min")
    for _ in range(3):
        submit(alice_client)

    refused = alice_client.post("/api/v1/workflow", ONE_NODE, format="json")

    error = assert_throttled(refused, "submit")
    assert refused["Retry-After"] == "40"  # the minute's window ends 40 s from now
    assert error["details"]["limit"] == 3 and error["details"]["window_seconds"] == 60
    assert "too many submit requests" in error["message"]


def test_every_answer_of_a_throttled_scope_carries_the_ratelimit_headers(alice_client, rates):
    rates(reads="3/min")

    answers = [
        alice_client.get("/api/v1/executions"),
        alice_client.get("/api/v1/workflow/00000000-0000-0000-0000-000000000000"),  # a 404
        alice_client.get("/api/v1/workflows"),
        alice_client.get("/api/v1/executions"),  # one too many
    ]

    assert [a.status_code for a in answers] == [200, 404, 200, 429]
    assert [limit_headers(a) for a in answers] == [
        ("3", "2", "40"),
        ("3", "1", "40"),
        ("3", "0", "40"),
        ("3", "0", "40"),
    ]


def test_the_window_resets_on_the_clock(alice_client, rates, fixed_clock):
    rates(reads="2/min")
    alice_client.get("/api/v1/executions")
    alice_client.get("/api/v1/executions")
    assert alice_client.get("/api/v1/executions").status_code == 429

    fixed_clock["now"] += 40  # the next minute

    again = alice_client.get("/api/v1/executions")
    assert again.status_code == 200
    assert limit_headers(again) == ("2", "1", "60")


def test_each_scope_counts_on_its_own(alice_client, rates):
    rates(submit="1/min", trigger="5/min", reads="5/min")
    submitted = submit(alice_client)
    assert_throttled(alice_client.post("/api/v1/workflow", ONE_NODE, format="json"), "submit")

    triggered = alice_client.post(f"/api/v1/workflow/trigger/{submitted['execution_id']}", {}, format="json")
    read = alice_client.get(f"/api/v1/workflow/{submitted['execution_id']}")

    assert triggered.status_code == 202 and limit_headers(triggered)[:2] == ("5", "4")
    assert read.status_code == 200 and limit_headers(read)[:2] == ("5", "4")


@pytest.mark.parametrize(
    ("scope", "call"),
    [
        ("submit", lambda client, ids: client.post(f"/api/v1/workflows/{ids['workflow_id']}/executions")),
        (
            "submit",
            lambda client, ids: client.post(
                f"/api/v1/workflow/{ids['execution_id']}/retrigger", {}, format="json"
            ),
        ),
        (
            "trigger",
            lambda client, ids: client.post(
                f"/api/v1/workflow/trigger/{ids['execution_id']}", {}, format="json"
            ),
        ),
        ("trigger", lambda client, ids: client.post(f"/api/v1/workflow/{ids['execution_id']}/rerun")),
    ],
    ids=["new-execution", "retrigger", "trigger", "rerun"],
)
def test_writes_count_under_their_scope(alice_client, rates, scope, call):
    submitted = submit(alice_client)
    rates(**{scope: "1/min"})

    call(alice_client, submitted)  # whatever it answers, it counted
    refused = call(alice_client, submitted)

    assert_throttled(refused, scope)


def test_a_cancel_is_not_throttled(alice_client, rates):
    rates(submit="100/min", trigger="1/min", reads="1/min")
    submitted = submit(alice_client)

    cancelled = alice_client.delete(f"/api/v1/workflow/{submitted['execution_id']}")

    assert cancelled.status_code == 200
    assert limit_headers(cancelled) == (None, None, None)


def test_a_waiting_status_read_counts_as_a_long_poll_not_a_read(alice_client, rates):
    rates(reads="5/min", long_poll="1/min")
    execution_id = submit(alice_client)["execution_id"]

    first = alice_client.get(f"/api/v1/workflow/{execution_id}?wait=0.01")
    second = alice_client.get(f"/api/v1/workflow/{execution_id}?wait=0.01")
    plain = alice_client.get(f"/api/v1/workflow/{execution_id}")

    assert first.status_code == 200 and limit_headers(first)[:2] == ("1", "0")
    assert_throttled(second, "long_poll")
    assert plain.status_code == 200 and limit_headers(plain)[:2] == ("5", "4")


def test_limits_are_per_user(alice_client, bob_client, rates):
    rates(reads="1/min")
    alice_client.get("/api/v1/executions")
    assert alice_client.get("/api/v1/executions").status_code == 429

    assert bob_client.get("/api/v1/executions").status_code == 200


def test_anonymous_callers_of_open_endpoints_are_counted_by_address(rates):
    rates(reads="1/min")
    here, there = APIClient(REMOTE_ADDR="10.1.0.1"), APIClient(REMOTE_ADDR="10.1.0.2")

    assert here.get("/api/v1/").status_code == 200
    assert_throttled(here.get("/api/v1/"), "reads")
    assert there.get("/api/v1/").status_code == 200


def test_the_count_is_shared_with_other_api_processes_through_redis(alice, alice_client, rates, streams):
    rates(reads="3/min")
    # Another API process counted two reads of alice's in this window.
    other_process = request_limits.hit([Limit("reads", request_limits.user_subject(alice), Rate(3, 60))] * 2)
    assert [t.count for t in other_process] == [1, 2]

    response = alice_client.get("/api/v1/executions")

    assert limit_headers(response)[:2] == ("3", "0")
    assert alice_client.get("/api/v1/executions").status_code == 429
    window = int(NOW // 60)
    assert streams.client.get(f"{streams.prefix}:throttle:reads:user:{alice.pk}:{window}") == b"4"


def test_a_rate_of_zero_or_nothing_turns_a_scope_off(alice_client, rates, monkeypatch):
    rates(reads=None)
    answers = [alice_client.get("/api/v1/executions") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert limit_headers(answers[-1]) == (None, None, None)

    for raw in ("0", "", " "):
        monkeypatch.setenv("THROTTLE_READS", raw)
        assert env_rate("THROTTLE_READS", "3000/min") is None
    monkeypatch.delenv("THROTTLE_READS")
    assert env_rate("THROTTLE_READS", "3000/min") == "3000/min"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("120/min", Rate(120, 60)), ("5/5min", Rate(5, 300)), ("20/s", Rate(20, 1)), ("2/ 10 s", Rate(2, 10))],
)
def test_rates_read_like_count_per_window(spec, expected):
    assert request_limits.rate(spec) == expected


def test_a_malformed_rate_fails_the_system_check(settings, rates):
    rates(submit="lots/min")
    settings.LOGIN_FAILURES_PER_USER = "5/0min"

    errors = {(e.id, e.msg.split(":")[0]) for e in run_checks() if e.id == "workflows.E006"}

    assert errors == {("workflows.E006", "THROTTLE_SUBMIT"), ("workflows.E006", "LOGIN_FAILURES_PER_USER")}


# --- cost and failure ------------------------------------------------------------------------


class CountedCommands:
    """Every command the API process sends to Redis, by name (pipelines count as one each)."""

    def __init__(self, monkeypatch, client):
        self.sent: list[str] = []
        send, pipeline = client.execute_command, client.pipeline

        def counted_send(*args, **options):
            self.sent.append(str(args[0]).upper())
            return send(*args, **options)

        def counted_pipeline(*args, **kwargs):
            pipe = pipeline(*args, **kwargs)
            run = pipe.execute

            def counted_run(*a, **k):
                self.sent.append("PIPELINE")
                return run(*a, **k)

            pipe.execute = counted_run
            return pipe

        monkeypatch.setattr(client, "execute_command", counted_send)
        monkeypatch.setattr(client, "pipeline", counted_pipeline)


@pytest.mark.parametrize("throttled", [False, True], ids=["off", "on"])
def test_a_throttled_request_costs_one_redis_call(alice_client, rates, streams, monkeypatch, throttled):
    rates(**({"submit": "100/min", "trigger": "100/min", "reads": "100/min"} if throttled else {}))
    # Her token verified once: a token this process does not know yet costs one more call, on a
    # failed-authentications counter (test_a_blocked_address_is_refused_even_with_a_valid_token...).
    alice_client.get("/api/v1/")
    commands = CountedCommands(monkeypatch, streams.client)

    execution_id = submit(alice_client)["execution_id"]
    after_submit = list(commands.sent)
    alice_client.post(f"/api/v1/workflow/trigger/{execution_id}", {}, format="json")
    after_trigger = commands.sent[len(after_submit) :]
    alice_client.get(f"/api/v1/workflow/{execution_id}")
    after_read = commands.sent[len(after_submit) + len(after_trigger) :]

    # Without throttles: submit and trigger send nothing before their commit (they publish after
    # it, which a test in one transaction never reaches); the status read overlays the live
    # claims (one MGET).
    extra = ["EVAL"] if throttled else []
    assert (after_submit, after_trigger, after_read) == (extra, extra, [*extra, "MGET"])


def test_redis_unreachable_lets_requests_through_and_is_logged_once(
    alice_client, rates, monkeypatch, stream_prefix
):
    rates(submit="1/min")
    logged = CapturingLogger()
    monkeypatch.setattr(request_limits, "log", logged)
    monkeypatch.setattr(request_limits, "outage_log", request_limits.OutageLog())  # no outage so far
    reachable = request_limits.get_streams
    unreachable = Streams(redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0)), stream_prefix)
    monkeypatch.setattr(request_limits, "get_streams", lambda: unreachable)

    answers = [alice_client.post("/api/v1/workflow", ONE_NODE, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert limit_headers(answers[0]) == (None, None, None)
    assert [call.args[0] for call in logged.calls] == ["request_limits_fail_open"]

    monkeypatch.setattr(request_limits, "get_streams", reachable)  # Redis is back
    rates(submit="5/min")
    submit(alice_client)
    submit(alice_client)
    assert [call.args[0] for call in logged.calls] == [
        "request_limits_fail_open",
        "request_limits_counting_again",
    ]


# --- failed token authentications per address ------------------------------------------------


@pytest.fixture
def auth_failures(settings, monkeypatch):
    settings.AUTH_FAILURES_PER_ADDRESS = "5/min"
    # Tokens verified by earlier tests would skip the bound: start with none known.
    monkeypatch.setattr(CachedTokenAuthentication, "cache", {})


def bad_token_client(address: str, **headers) -> APIClient:
    client = APIClient(REMOTE_ADDR=address, **headers)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    return client


def test_bad_tokens_from_one_address_are_refused_without_a_lookup_past_the_limit(auth_failures):
    guesser = bad_token_client("10.2.0.1")

    answers = [guesser.get("/api/v1/executions").status_code for _ in range(100)]
    with CaptureQueriesContext(connection) as queries:
        refused = guesser.get("/api/v1/executions")

    assert answers == [401] * 5 + [429] * 95
    error = assert_throttled(refused, "auth_failures")
    assert "too many failed authentications from this address" in error["message"]
    assert refused["Retry-After"] == "40"
    assert len(queries) == 0  # the token was not looked up


def test_a_blocked_address_is_refused_even_with_a_valid_token_not_yet_verified(auth_failures, alice):
    guesser = bad_token_client("10.2.0.2")
    for _ in range(5):
        guesser.get("/api/v1/executions")

    alice_there = token_client(alice)
    alice_there.defaults["REMOTE_ADDR"] = "10.2.0.2"
    alice_elsewhere = token_client(alice)
    alice_elsewhere.defaults["REMOTE_ADDR"] = "10.2.0.3"

    assert_throttled(alice_there.get("/api/v1/executions"), "auth_failures")
    assert alice_elsewhere.get("/api/v1/executions").status_code == 200


def test_a_token_this_process_verified_is_not_held_up(auth_failures, alice):
    alice_there = token_client(alice)
    alice_there.defaults["REMOTE_ADDR"] = "10.2.0.4"
    assert alice_there.get("/api/v1/executions").status_code == 200  # verified: cached
    guesser = bad_token_client("10.2.0.4")
    for _ in range(6):
        guesser.get("/api/v1/executions")

    assert alice_there.get("/api/v1/executions").status_code == 200


def test_malformed_authorization_headers_count_as_failures(auth_failures):
    client = APIClient(REMOTE_ADDR="10.2.0.5")
    client.credentials(HTTP_AUTHORIZATION="Token")
    assert [client.get("/api/v1/executions").status_code for _ in range(5)] == [401] * 5

    assert_throttled(bad_token_client("10.2.0.5").get("/api/v1/executions"), "auth_failures")


def test_x_forwarded_for_is_ignored_unless_a_proxy_count_is_set(auth_failures, settings):
    answers = [
        bad_token_client("10.2.0.6", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        .get("/api/v1/executions")
        .status_code
        for n in range(6)
    ]
    assert answers == [401] * 5 + [429]

    settings.TRUSTED_PROXY_COUNT = 1  # one proxy at 10.2.0.6 appends the address it saw
    forwarded = [
        bad_token_client("10.2.0.6", HTTP_X_FORWARDED_FOR=f"203.0.113.9, 192.0.2.{n}")
        .get("/api/v1/executions")
        .status_code
        for n in range(6)
    ]
    assert forwarded == [401] * 6  # six clients as far as the proxy saw, whatever they wrote


def test_ipv6_clients_are_counted_per_64_network(auth_failures):
    answers = [
        bad_token_client(f"2001:db8:0:1::{n:x}").get("/api/v1/executions").status_code for n in range(1, 7)
    ]
    assert answers == [401] * 5 + [429]
    assert bad_token_client("2001:db8:0:2::1").get("/api/v1/executions").status_code == 401


def test_without_a_rate_bad_tokens_stay_401s(auth_failures, settings):
    settings.AUTH_FAILURES_PER_ADDRESS = None
    guesser = bad_token_client("10.2.0.7")

    assert {guesser.get("/api/v1/executions").status_code for _ in range(40)} == {401}
