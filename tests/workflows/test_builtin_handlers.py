"""The built-in handlers called as a worker calls them (config, TaskContext), against scripted
servers on loopback (127.0.0.2, allowlisted); their config schemas at submit (400 naming the node
and the field); and which circuit breaker each task answers to."""

import json

import pytest

from resilience.errors import error_detail
from tests import reference_payloads
from tests.local_servers import Reply, ScriptedServer
from workflows.handlers import TaskContext, circuit_for, get_handler

pytestmark = pytest.mark.django_db

CONTEXT = TaskContext(execution_id="00000000-0000-0000-0000-00000000000e", node_id="fetch", attempt=1)


@pytest.fixture(autouse=True)
def own_streams(stream_prefix, settings):
    """Redis keys of this test's own; users with a fast password hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def online(settings):
    """Real calls (the suite answers offline by default), to the allowlisted 127.0.0.2 only."""
    settings.HANDLERS_OFFLINE = False
    settings.OUTBOUND_ALLOWLIST = ["127.0.0.2"]
    settings.LLM_BASE_URL = ""


@pytest.fixture
def server():
    scripted = ScriptedServer("127.0.0.2")
    yield scripted
    scripted.close()


def call(handler: str, config: dict, context: TaskContext = CONTEXT):
    return get_handler(handler).function(config, context)


def failure(handler: str, config: dict) -> dict:
    """The error detail a worker would record for this call."""
    with pytest.raises(Exception) as caught:
        call(handler, config)
    return error_detail(caught.value)


# --- call_external_service ---------------------------------------------------------------------


def test_a_json_response_is_parsed_and_described(server):
    server.route("/users", Reply(body={"users": [{"name": "Ada"}]}, headers={"X-Total": "1"}))

    output = call("call_external_service", {"url": server.url("/users")})

    assert output["status_code"] == 200
    assert output["data"] == {"users": [{"name": "Ada"}]}
    assert output["headers"]["content-type"] == "application/json"
    assert output["headers"]["x-total"] == "1"
    assert output["url"] == server.url("/users")
    assert output["method"] == "GET"
    assert output["elapsed_ms"] >= 0
    assert "offline" not in output


def test_a_text_response_is_text(server):
    server.route("/motd", Reply(body="héllo\n", headers={"Content-Type": "text/plain; charset=utf-8"}))

    assert call("call_external_service", {"url": server.url("/motd")})["data"] == "héllo\n"


def test_method_headers_query_and_json_body_are_sent_with_the_idempotency_key(server):
    server.route("/orders", Reply(201, body={"id": 7}))

    output = call(
        "call_external_service",
        {
            "url": server.url("/orders?source=wf"),
            "method": "post",
            "headers": {"X-Trace": "abc"},
            "params": {"page": 2},
            "json": {"item": "book", "qty": 1},
        },
    )

    assert output["status_code"] == 201
    [hit] = server.hits
    assert hit.method == "POST" and hit.path == "/orders?source=wf&page=2"
    assert json.loads(hit.body) == {"item": "book", "qty": 1}
    assert hit.headers["X-Trace"] == "abc"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["Idempotency-Key"] == CONTEXT.idempotency_key


def test_the_idempotency_key_can_be_left_out_or_given(server):
    server.route("/x", Reply(body="ok"))

    call("call_external_service", {"url": server.url("/x"), "idempotency_key": False})
    call("call_external_service", {"url": server.url("/x"), "headers": {"idempotency-key": "mine"}})

    assert "Idempotency-Key" not in server.hits[0].headers
    assert server.hits[1].headers["Idempotency-Key"] == "mine"


def test_a_text_body_is_sent_as_given(server):
    server.route("/raw", Reply(body="ok"))

    call("call_external_service", {"url": server.url("/raw"), "method": "PUT", "body": "a=1&b=2"})

    assert server.hits[0].body == b"a=1&b=2"


def test_a_4xx_fails_for_good_unless_listed_as_retryable(server):
    server.route("/gone", Reply(404, body={"error": "no such thing"}))
    server.route("/busy", Reply(409, body="locked"))

    gone = failure("call_external_service", {"url": server.url("/gone")})
    busy = failure("call_external_service", {"url": server.url("/busy"), "retry_on_status": [409]})

    assert (gone["code"], gone["permanent"]) == ("http_404", True)
    assert "no such thing" in gone["message"]
    assert (busy["code"], busy["permanent"], busy["category"]) == ("http_409", False, "transient")


def test_a_5xx_is_transient(server):
    server.route("/down", Reply(503, body="maintenance"))

    detail = failure("call_external_service", {"url": server.url("/down")})

    assert (detail["code"], detail["category"], detail["permanent"]) == ("http_503", "transient", False)


def test_a_429_carries_its_retry_after(server):
    server.route("/limited", Reply(429, headers={"Retry-After": "7"}))
    server.route("/forever", Reply(429, headers={"Retry-After": "86400"}))

    limited = failure("call_external_service", {"url": server.url("/limited")})
    forever = failure("call_external_service", {"url": server.url("/forever")})

    assert (limited["code"], limited["permanent"], limited["retry_after_seconds"]) == ("http_429", False, 7.0)
    assert forever["permanent"] is True and "more than the engine waits" in forever["message"]


def test_expected_status_codes_decide_what_succeeds(server):
    server.route("/accepted", Reply(202, body="queued"))

    assert (
        call("call_external_service", {"url": server.url("/accepted"), "expected_status": [202]})["data"]
        == "queued"
    )
    detail = failure("call_external_service", {"url": server.url("/accepted"), "expected_status": [200]})
    assert (detail["code"], detail["permanent"]) == ("http_202", True)


def test_a_timeout_and_a_too_large_response(server):
    server.route("/slow", Reply(body="late", delay=2.0))
    server.route("/big", Reply(body="x" * 5000))

    slow = failure("call_external_service", {"url": server.url("/slow"), "timeout": 0.3})
    big = failure("call_external_service", {"url": server.url("/big"), "max_response_bytes": 1000})

    assert (slow["code"], slow["category"], slow["permanent"]) == ("http_timeout", "timeout", False)
    assert (big["code"], big["permanent"]) == ("response_too_large", True)


def test_a_private_target_is_refused_before_any_connection(server):
    detail = failure("call_external_service", {"url": "http://169.254.169.254/latest/meta-data/"})

    assert (detail["code"], detail["permanent"], detail["category"]) == ("ssrf_blocked", True, "validation")


def test_offline_and_mock_answer_without_calling(server, settings):
    mocked = call("call_external_service", {"url": server.url("/x"), "mock": True})
    settings.HANDLERS_OFFLINE = True
    offline = call("call_external_service", {"url": "https://api.example.com/users", "method": "post"})

    assert server.hits == []
    assert mocked["offline"] is True and mocked["status_code"] == 200
    assert offline["url"] == "https://api.example.com/users" and offline["method"] == "POST"
    assert offline["response"] == offline["data"]
    assert offline == call(
        "call_external_service", {"url": "https://api.example.com/users", "method": "post"}
    )


def test_a_config_that_a_template_made_wrong_fails_for_good():
    detail = failure("call_external_service", {"url": "https://x.example", "timeout": [1]})

    assert (detail["code"], detail["permanent"]) == ("invalid_config", True)
    assert "'timeout'" in detail["message"]


# --- call_llm --------------------------------------------------------------------------------


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "tiny-1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "A sentence."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


@pytest.fixture
def llm(server, settings):
    """A fake OpenAI-compatible endpoint at LLM_BASE_URL."""
    settings.LLM_BASE_URL = server.url("/v1")
    settings.LLM_API_KEY = "sk-test-0123456789"
    settings.LLM_MODEL = "tiny-1"
    server.route("/v1/chat/completions", Reply(body=COMPLETION))
    return server


def test_call_llm_asks_the_configured_endpoint(llm):
    context = TaskContext(execution_id=CONTEXT.execution_id, node_id="summarize", attempt=1)

    output = call(
        "call_llm",
        {"prompt": "Summarise: x", "system": "Be brief.", "temperature": 0.3, "max_tokens": 50},
        context,
    )

    assert output == {
        "response": "A sentence.",
        "result": "A sentence.",
        "model": "tiny-1",
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        "finish_reason": "stop",
    }
    [hit] = llm.hits
    assert hit.method == "POST" and hit.headers["Authorization"] == "Bearer sk-test-0123456789"
    assert json.loads(hit.body) == {
        "model": "tiny-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Summarise: x"}],
        "temperature": 0.3,
        "max_tokens": 50,
    }
    assert context.redacted == ["sk-test-0123456789"]  # the worker scrubs it from what leaves


def test_call_llm_takes_messages_and_a_model_from_the_config(llm):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

    call("call_llm", {"messages": messages, "model": "other-2"})

    assert json.loads(llm.hits[0].body) == {"model": "other-2", "messages": messages}


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (400, True), (500, False), (429, False)])
def test_call_llm_errors(llm, status, permanent):
    llm.route("/v1/chat/completions", Reply(status, body={"error": {"message": "nope"}}))

    detail = failure("call_llm", {"prompt": "x"})

    assert (detail["code"], detail["permanent"]) == (f"http_{status}", permanent)


def test_call_llm_without_an_endpoint_answers_offline_deterministically():
    first = call("call_llm", {"prompt": "Extract keywords", "model": "gpt-4"})

    assert first["offline"] is True
    assert first["model"] == "gpt-4" and first["finish_reason"] == "stop"
    assert first["response"].startswith("[offline gpt-4]") and first["result"] == first["response"]
    assert first == call("call_llm", {"prompt": "Extract keywords", "model": "gpt-4"})
    assert first != call("call_llm", {"prompt": "Something else", "model": "gpt-4"})


def test_call_llm_mock_never_calls_the_endpoint(llm):
    assert call("call_llm", {"prompt": "x", "mock": True})["offline"] is True
    assert llm.hits == []


# --- transform -------------------------------------------------------------------------------


def test_transform_outputs_its_resolved_config():
    output = {"name": "Ada", "n": 3, "tags": ["a", "b"]}

    assert call("transform", {"output": output}) == output


# --- circuits --------------------------------------------------------------------------------


def test_calls_out_answer_to_one_circuit_per_host_and_local_handlers_to_none(settings):
    settings.LLM_BASE_URL = "https://llm.example.com/v1"

    assert circuit_for("call_external_service", {"url": "https://API.example.com./x"}) == (
        "call_external_service:api.example.com"
    )
    assert (
        circuit_for("call_external_service", {"url": "http://10.0.0.1:8080/"})
        == "call_external_service:10.0.0.1"
    )
    assert circuit_for("call_llm", {"prompt": "x"}) == "call_llm:llm.example.com"
    assert circuit_for("call_external_service", {"url": "https://a.example", "mock": True}) is None
    for local in ("input", "output", "decision", "transform", "delay"):
        assert circuit_for(local, {"simulate_failure": True}) is None
    assert circuit_for("some_project_handler", {}) == "some_project_handler"
    settings.HANDLERS_OFFLINE = True
    assert circuit_for("call_external_service", {"url": "https://api.example.com"}) is None
    assert circuit_for("call_llm", {"prompt": "x"}) is None


# --- config schemas at submit ----------------------------------------------------------------


def submit(client, *nodes: dict):
    return client.post("/api/v1/workflow", {"name": "schema", "dag": {"nodes": list(nodes)}}, format="json")


@pytest.mark.parametrize(
    ("node", "field"),
    [
        ({"handler": "call_external_service", "config": {}}, "'url' is required"),
        ({"handler": "call_external_service", "config": {"url": 5}}, "'url' must be a string"),
        (
            {"handler": "call_external_service", "config": {"url": "ftp://x"}},
            "'url' must be an http or https URL",
        ),
        ({"handler": "call_external_service", "config": {"url": "https://x", "timeout": "1"}}, "'timeout'"),
        ({"handler": "call_external_service", "config": {"url": "https://x", "method": "FETCH"}}, "'method'"),
        ({"handler": "call_external_service", "config": {"url": "https://x", "header": {}}}, "['header']"),
        (
            {"handler": "call_external_service", "config": {"url": "https://x", "headers": {"a": 1}}},
            "'headers'",
        ),
        (
            {"handler": "call_external_service", "config": {"url": "https://x", "expected_status": [99]}},
            "status",
        ),
        ({"handler": "call_llm", "config": {}}, "'prompt' or 'messages'"),
        ({"handler": "call_llm", "config": {"messages": [{"role": "user"}]}}, "'messages'"),
        ({"handler": "call_llm", "config": {"prompt": "x", "temperature": 5}}, "'temperature'"),
        ({"handler": "transform", "config": {}}, "'output' is required"),
        ({"handler": "delay", "config": {"seconds": -1}}, "'seconds'"),
        ({"handler": "decision", "config": {"operator": "~"}}, "'operator'"),
        ({"handler": "input", "config": {"simulate_failure": "yes"}}, "'simulate_failure'"),
    ],
)
def test_a_config_that_does_not_fit_its_handler_is_a_400_naming_node_and_field(alice_client, node, field):
    response = submit(alice_client, {"id": "bad_node", **node})

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert error["details"] == {"node": "bad_node"}
    assert "'bad_node'" in error["message"] and field in error["message"]


def test_templated_values_pass_the_schema_until_they_are_resolved(alice_client):
    response = submit(
        alice_client,
        {"id": "start", "handler": "input", "config": {"timeout": 2}},
        {
            "id": "fetch",
            "handler": "call_external_service",
            "dependencies": ["start"],
            "config": {
                "url": "{{ params.url }}",
                "timeout": "{{ start.timeout }}",
                "headers": {"A": "{{ start.a }}"},
            },
        },
    )

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("spec", ["0/s", "0/m"])
def test_a_node_rate_limit_of_zero_is_a_400(alice_client, spec):
    response = submit(alice_client, {"id": "a", "handler": "input", "config": {"rate_limit": spec}})

    assert response.status_code == 400
    assert "can only tighten" in response.json()["error"]["message"]


def test_secret_references_are_accepted_in_configs_only(alice_client):
    ok = submit(
        alice_client,
        {
            "id": "fetch",
            "handler": "call_external_service",
            "config": {
                "url": "https://x.example/?k={{ secrets.API_KEY }}",
                "headers": {"A": "{{secrets.B}}"},
            },
        },
    )
    in_condition = submit(alice_client, {"id": "a", "handler": "input", "condition": "{{ secrets.X }} == 1"})
    nested = submit(alice_client, {"id": "a", "handler": "input", "config": {"k": "{{ secrets.A.b }}"}})
    reserved = submit(alice_client, {"id": "secrets", "handler": "input"})

    assert ok.status_code == 201, ok.content
    assert (
        in_condition.status_code == 400 and "cannot read secrets" in in_condition.json()["error"]["message"]
    )
    assert nested.status_code == 400 and "must name one secret" in nested.json()["error"]["message"]
    assert reserved.status_code == 400 and "reserved" in reserved.json()["error"]["message"]


def test_the_reference_payload_configs_fit_their_schemas(alice_client):
    for path in reference_payloads.PATHS:
        response = alice_client.post("/api/v1/workflow", json.loads(path.read_text()), format="json")
        assert response.status_code == 201, (path.name, response.content)
