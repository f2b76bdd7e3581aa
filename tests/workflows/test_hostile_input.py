"""Hostile input (issue 11): whatever a client sends, the API answers a 4xx in the one error shape
and never a 500; and no request can make the engine store or do unboundedly much.

Every test here failed before its fix: most answered 500 (PostgreSQL refusing what Python had
accepted, or an int() of thousands of digits), the others accepted what they now refuse.
"""

import json

import pytest
from rest_framework.test import APIClient

from dlq.models import DeadLetter
from tests.workflows.api_driver import (
    apply,
    assert_error,
    exhausted_failure,
    node,
    published_tasks,
    reference_payload,
    run_handler,
    status_of,
    submit,
    workflow,
)
from workflows import dag_cache
from workflows.models import Execution, TaskRun, Workflow
from workflows.templating import MAX_INDEX_DIGITS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_streams(streams):
    """Every test publishes to streams of its own, never to a real deployment's."""
    return streams


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_exceptions_raised_into_tests(alice_client, operator_client):
    """A 500 must show up as a 500 response here, as a client would see it."""
    alice_client.raise_request_exception = False
    operator_client.raise_request_exception = False


@pytest.fixture
def post_json(django_capture_on_commit_callbacks):
    """POST raw bytes as JSON and run what the request scheduled for after commit."""

    def post_json(client: APIClient, url: str, body: bytes | str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, body, content_type="application/json")

    return post_json


def ref(path: str) -> str:
    """A template reading `path`."""
    return "{{ " + path + " }}"


def submitted(client: APIClient, *nodes: dict, **fields) -> str:
    return submit(client, workflow(*nodes, **fields))["execution_id"]


def tasks_of(client: APIClient, execution_id: str) -> dict[str, dict]:
    response = client.get(f"/api/v1/executions/{execution_id}/tasks")
    assert response.status_code == 200, response.content
    return {task["node_id"]: task for task in response.json()["results"]}


# --- numbers PostgreSQL cannot store: 500 before, now 400 naming the path --------------------

UNSTORABLE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "2.5e308"]
SUBMIT_PLACES = {
    # where the number goes in a submitted workflow: the JSON path the error must name
    "dag.nodes[2].config.x": '{"name": "n", "dag": {"nodes": [{"id": "a", "handler": "input"}, '
    '{"id": "b", "handler": "input"}, {"id": "c", "handler": "input", "config": {"x": %s}}]}}',
    "dag.nodes[0].config.deep[1].y": '{"name": "n", "dag": {"nodes": [{"id": "a", "handler": "input", '
    '"config": {"deep": [0, {"y": %s}]}}]}}',
    "timeout_seconds": '{"name": "n", "timeout_seconds": %s, "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
    "dag.nodes[0].retry.backoff_base": '{"name": "n", "dag": {"nodes": [{"id": "a", "handler": "input", '
    '"retry": {"backoff_base": %s}}]}}',
}


@pytest.mark.parametrize("number", UNSTORABLE_NUMBERS)
@pytest.mark.parametrize("path", list(SUBMIT_PLACES))
def test_submit_answers_an_unstorable_number_with_400_naming_its_path(alice_client, number, path):
    response = alice_client.post(
        "/api/v1/workflow", SUBMIT_PLACES[path] % number, content_type="application/json"
    )

    error = assert_error(response, 400, "parse_error")
    assert path in error["message"]
    assert error["details"] == {"path": path}
    assert not Workflow.objects.exists()


@pytest.mark.parametrize("number", UNSTORABLE_NUMBERS)
def test_trigger_answers_unstorable_params_with_400_naming_the_path(alice_client, post_json, streams, number):
    execution_id = submitted(alice_client, node("a"))

    response = post_json(
        alice_client,
        f"/api/v1/workflow/trigger/{execution_id}",
        '{"params": {"a": {"b": NUMBER}}}'.replace("NUMBER", number),
    )

    error = assert_error(response, 400, "parse_error")
    assert "params.a.b" in error["message"]
    assert status_of(alice_client, execution_id)["status"] == "PENDING"
    assert not published_tasks(streams)


def test_unstorable_numbers_are_refused_on_every_json_endpoint(alice_client, operator_client, post_json):
    """The check is in the parser, so endpoints that never store the number refuse it too."""
    execution_id = submitted(alice_client, node("a"))

    retrigger = post_json(
        alice_client, f"/api/v1/workflow/{execution_id}/retrigger", '{"params": {"x": NaN}}'
    )
    note = post_json(operator_client, "/api/v1/admin/dlq/1/retry", '{"note": 1e400}')

    assert_error(retrigger, 400, "parse_error")
    assert_error(note, 400, "parse_error")


def test_more_digits_than_python_converts_is_a_clear_400(alice_client):
    body = '{"name": "n", "dag": {"nodes": [{"id": "a", "handler": "input", "config": {"x": %s}}]}}' % (
        "9" * 5000
    )

    error = assert_error(alice_client.post("/api/v1/workflow", body, content_type="application/json"), 400)

    assert "4300 digits" in error["message"]
    assert "sys.set_int_max_str_digits" not in error["message"]


def test_large_but_finite_numbers_are_still_accepted(alice_client, post_json):
    execution_id = submitted(alice_client, node("a", config={"big": 1e308, "huge": 10**40, "tiny": 1e-320}))

    response = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", '{"params": {"p": -1.7e308}}'
    )

    assert response.status_code == 202, response.content


# --- duplicate keys: silently "last one wins" before, now 400 naming the key -------------------

DUPLICATES = {
    "top_level": (
        '{"name": "x", "name": "y", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}',
        "'name'",
        {},
    ),
    "node": (
        '{"name": "x", "dag": {"nodes": [{"id": "a", "handler": "input", "id": "b"}]}}',
        "'id'",
        {"path": "dag.nodes[0]"},
    ),
    "config": (
        '{"name": "x", "dag": {"nodes": [{"id": "a", "handler": "input", "config": {"k": 1, "k": 2}}]}}',
        "'k'",
        {"path": "dag.nodes[0].config"},
    ),
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_submit_refuses_duplicate_keys_naming_the_key(alice_client, case):
    body, key, details = DUPLICATES[case]

    error = assert_error(alice_client.post("/api/v1/workflow", body, content_type="application/json"), 400)

    assert "duplicate key" in error["message"]
    assert key in error["message"]
    assert error["details"] == details
    assert not Workflow.objects.exists()


def test_trigger_refuses_duplicate_keys_in_params(alice_client, post_json, streams):
    execution_id = submitted(alice_client, node("a"))

    response = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", '{"params": {"who": "me", "who": "you"}}'
    )

    error = assert_error(response, 400, "parse_error")
    assert "'who'" in error["message"]
    assert error["details"] == {"path": "params"}
    assert not published_tasks(streams)


# --- JSON only on write endpoints: a form-encoded trigger ran with empty params ----------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("params=%7B%22x%22%3A1%7D", "application/x-www-form-urlencoded"),
        (
            '--B\r\nContent-Disposition: form-data; name="params"\r\n\r\n{}\r\n--B--\r\n',
            "multipart/form-data; boundary=B",
        ),
        ('{"params": {}}', "text/plain"),
    ],
    ids=["form", "multipart", "text"],
)
def test_trigger_refuses_anything_but_json_with_415(alice_client, streams, body, content_type):
    execution_id = submitted(alice_client, node("a", config={"x": "{{ params.x }}"}))

    response = alice_client.post(f"/api/v1/workflow/trigger/{execution_id}", body, content_type=content_type)

    error = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    assert status_of(alice_client, execution_id)["status"] == "PENDING"
    assert not published_tasks(streams)


def test_submit_refuses_a_form_with_415(alice_client):
    response = alice_client.post("/api/v1/workflow", {"name": "x", "dag": "{}"}, format="multipart")

    assert_error(response, 415, "unsupported_media_type")
    assert not Workflow.objects.exists()


# --- request size: Django's HTML 400 before, now 413 in the error shape --------------------------


def test_a_body_over_the_size_limit_is_413_in_the_error_shape(alice_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    payload = json.dumps(workflow(node("a", config={"blob": "x" * 2000})))

    response = alice_client.post("/api/v1/workflow", payload, content_type="application/json")

    error = assert_error(response, 413, "payload_too_large")
    assert "1000" in error["message"]
    assert not Workflow.objects.exists()


def test_too_many_query_fields_is_413_in_the_error_shape(alice_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    query = "&".join(f"f{i}=1" for i in range(20))

    assert_error(alice_client.get(f"/api/v1/executions?{query}"), 413, "payload_too_large")


# --- pagination: a bigint overflow (500) and no maximum page size before ----------------------

LIST_URLS = [
    "/api/v1/executions",
    "/api/v1/workflows",
    "/api/v1/executions/{execution}/tasks",
    "/api/v1/admin/dlq",
]
BAD_PAGES = [
    "limit=100000000000000000000",
    "limit=9223372036854775808",
    "offset=100000000000000000000",
    "limit=501",
    "limit=0",
    "limit=-5",
    "offset=-1",
    "limit=abc",
    "limit=%C2%B2",
    "offset=%D9%A1",
    "limit=1_0",
    "limit=+5",
    "limit=%205",
    "offset=1.5",
]


@pytest.fixture
def failed_execution(alice_client, post_json, streams) -> str:
    """alice's execution whose `process` node failed for good: a row in every list, a dead letter."""
    execution_id = submit(alice_client, reference_payload("linear_workflow"))["execution_id"]
    post_json(alice_client, f"/api/v1/workflow/trigger/{execution_id}", "{}")
    tasks = {task.node_id: task for task in published_tasks(streams)}
    ready = apply(run_handler(tasks["start"]))
    apply(exhausted_failure(ready["process"], "upstream said no"))
    return execution_id


@pytest.mark.parametrize("query", BAD_PAGES)
@pytest.mark.parametrize("url", LIST_URLS)
def test_every_list_refuses_a_bad_page_with_400(operator_client, failed_execution, url, query):
    response = operator_client.get(f"{url.format(execution=failed_execution)}?{query}")

    error = assert_error(response, 400, "invalid_pagination")
    assert query.split("=")[0] in error["message"]


@pytest.mark.parametrize("url", LIST_URLS)
def test_every_list_pages_up_to_the_maximum(operator_client, failed_execution, settings, url):
    settings.API_MAX_PAGE_SIZE = 2
    url = url.format(execution=failed_execution)

    first = operator_client.get(f"{url}?limit=2")
    past_the_end = operator_client.get(f"{url}?limit=1&offset=999999")

    assert first.status_code == 200, first.content
    assert 1 <= len(first.json()["results"]) <= 2
    assert past_the_end.json()["results"] == []
    assert_error(operator_client.get(f"{url}?limit=3"), 400, "invalid_pagination")


def test_the_default_page_is_unchanged(alice_client, failed_execution):
    body = alice_client.get("/api/v1/executions").json()

    assert body["count"] == 1
    assert body["next"] is None


# --- filters and path parameters: NUL and non-ASCII digits ------------------------------------


@pytest.mark.parametrize("param", ["handler", "category", "status", "execution", "limit"])
@pytest.mark.parametrize("url", LIST_URLS)
def test_every_list_refuses_a_nul_character_in_a_parameter_with_400(
    operator_client, failed_execution, url, param
):
    response = operator_client.get(f"{url.format(execution=failed_execution)}?{param}=a%00b")

    error = assert_error(response, 400, "invalid_request")
    assert param in error["message"] and error["details"] == {"parameter": param}


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/dlq?handler=a%00b",
        "/dashboard/workflows?q=%00",
        "/dashboard/executions?status=%00",
        "/admin/dlq/deadletter/?handler=%00",
        "/admin/workflows/execution/?q=%00",
    ],
)
def test_pages_refuse_a_nul_character_in_a_query_with_400(operator, client, url):
    client.force_login(operator)

    response = client.get(url)

    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_a_form_field_with_a_nul_character_is_400_and_changes_nothing(operator, client, failed_execution):
    client.force_login(operator)
    letter = DeadLetter.objects.get()

    response = client.post(f"/dashboard/dlq/{letter.pk}/discard", {"note": "a\x00b"})

    assert response.status_code == 400
    assert "'note'" in response.content.decode()
    assert DeadLetter.objects.get().status == DeadLetter.Status.OPEN


def test_dead_letter_text_filters_still_match_unicode(operator_client, failed_execution):
    assert operator_client.get("/api/v1/admin/dlq?handler=%C2%B2").json()["count"] == 0
    assert operator_client.get("/api/v1/admin/dlq?handler=call_external_service").json()["count"] == 1


@pytest.mark.parametrize(
    "letter_id", ["%C2%B2", "%D9%A1", "%00", "1%00", "99999999999999999999999", "-1", "1.0"]
)
@pytest.mark.parametrize("method", ["get", "retry", "delete"])
def test_a_dead_letter_id_that_names_none_is_404(operator_client, failed_execution, method, letter_id):
    url = f"/api/v1/admin/dlq/{letter_id}"
    if method == "retry":
        response = operator_client.post(f"{url}/retry", {}, format="json")
    else:
        response = getattr(operator_client, method)(url)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("raw_id", ["%00", "%C2%B2", "%D9%A1" * 32, "x" * 5000])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/workflow/{id}"),
        ("get", "/api/v1/workflow/{id}/results"),
        ("delete", "/api/v1/workflow/{id}"),
        ("post", "/api/v1/workflow/trigger/{id}"),
        ("post", "/api/v1/workflow/{id}/rerun"),
        ("post", "/api/v1/workflow/{id}/retrigger"),
        ("get", "/api/v1/executions/{id}"),
        ("get", "/api/v1/executions/{id}/tasks"),
        ("get", "/api/v1/workflows/{id}"),
        ("post", "/api/v1/workflows/{id}/executions"),
    ],
)
def test_every_path_id_that_names_nothing_is_404(alice_client, method, url, raw_id):
    response = getattr(alice_client, method)(url.format(id=raw_id))

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "query", ["status=%00", "workflow=%00", "workflow=%C2%B2", "status=%C2%B2", "status=" + "x" * 5000]
)
def test_execution_filters_refuse_nonsense_with_400(alice_client, query):
    assert_error(alice_client.get(f"/api/v1/executions?{query}"), 400)


# --- template list indexes: 500 at trigger, and a child's failure blamed on its parent --------

LONG_INDEX = "0" * 5000


def test_submit_refuses_an_over_long_list_index_naming_the_node(alice_client):
    payload = workflow(
        node("parent"), node("child", deps=("parent",), config={"x": ref(f"parent.items.{LONG_INDEX}")})
    )

    error = assert_error(
        alice_client.post("/api/v1/workflow", payload, format="json"), 400, "invalid_template"
    )

    assert error["details"] == {"node": "child"}
    assert f"more than {MAX_INDEX_DIGITS} digits" in error["message"]


def stored_with(client: APIClient, payload: dict, **config_by_node: dict) -> str:
    """Submit `payload`, then give its stored definition configs today's submit would refuse (as
    one accepted before the check existed); returns the execution id."""
    body = submit(client, payload)
    workflow_row = Workflow.objects.get(pk=body["workflow_id"])
    for raw in workflow_row.dag["nodes"]:
        raw["config"] = config_by_node.get(raw["id"], raw["config"])
    workflow_row.save(update_fields=["dag"])
    dag_cache._dags.pop(body["workflow_id"], None)
    return body["execution_id"]


def test_a_stored_root_with_an_over_long_index_fails_cleanly_at_trigger(alice_client, post_json):
    execution_id = stored_with(
        alice_client, workflow(node("root")), root={"x": ref(f"params.items.{LONG_INDEX}")}
    )

    response = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", '{"params": {"items": [1]}}'
    )

    assert response.status_code == 202, response.content
    task = tasks_of(alice_client, execution_id)["root"]
    assert task["status"] == "FAILED"
    assert task["error"]["code"] == "invalid_template"
    assert task["error"]["permanent"] is True
    assert status_of(alice_client, execution_id)["status"] == "FAILED"


def test_a_stored_child_with_an_over_long_index_fails_itself_not_its_parent(alice_client, post_json, streams):
    execution_id = stored_with(
        alice_client,
        workflow(node("parent", config={"items": [1, 2]}), node("child", deps=("parent",))),
        child={"x": ref(f"parent.items.{LONG_INDEX}")},
    )
    post_json(alice_client, f"/api/v1/workflow/trigger/{execution_id}", "{}")
    [parent] = published_tasks(streams)

    queued = apply(run_handler(parent))

    assert queued == {}
    tasks = tasks_of(alice_client, execution_id)
    assert tasks["parent"]["status"] == "COMPLETED"
    assert tasks["child"]["status"] == "FAILED"
    assert tasks["child"]["error"]["code"] == "invalid_template"


# --- retries: unbounded max_attempts, and attempt 1025 overflowed the backoff -------------------


def test_submit_bounds_retry_max_attempts(alice_client, settings):
    settings.DAG_MAX_RETRY_ATTEMPTS = 7

    assert submitted(alice_client, node("a", retry={"max_attempts": 7}))
    error = assert_error(
        alice_client.post("/api/v1/workflow", workflow(node("b", retry={"max_attempts": 8})), format="json"),
        400,
        "too_large",
    )
    assert error["details"] == {"node": "b"}
    assert "7" in error["message"]


def test_the_default_bound_on_max_attempts_is_100(alice_client):
    assert submitted(alice_client, node("a", retry={"max_attempts": 100}))
    assert_error(
        alice_client.post(
            "/api/v1/workflow", workflow(node("b", retry={"max_attempts": 101})), format="json"
        ),
        400,
    )


# --- descriptions: 16 MB accepted and returned in every list page ------------------------------


def test_description_is_capped(alice_client):
    assert submitted(alice_client, node("a"), description="d" * 2000)

    response = alice_client.post(
        "/api/v1/workflow", workflow(node("a"), description="d" * 2001), format="json"
    )

    assert "description" in assert_error(response, 400, "invalid_payload")["message"]


# --- amplification: 100 x "{{ params.big }}" stored a 10 MB config ------------------------------


def test_trigger_refuses_params_over_the_limit(alice_client, post_json, settings, streams):
    settings.PARAMS_MAX_BYTES = 1000
    execution_id = submitted(alice_client, node("a"))

    too_big = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", json.dumps({"params": {"big": "x" * 1000}})
    )

    error = assert_error(too_big, 400, "params_too_large")
    assert "1000" in error["message"]
    assert not published_tasks(streams)
    ok = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", json.dumps({"params": {"b": "x" * 900}})
    )
    assert ok.status_code == 202, ok.content


def test_retrigger_refuses_params_over_the_limit_and_leaves_nothing_behind(alice_client, post_json, settings):
    settings.PARAMS_MAX_BYTES = 1000
    execution_id = submitted(alice_client, node("a"))

    response = post_json(
        alice_client,
        f"/api/v1/workflow/{execution_id}/retrigger",
        json.dumps({"params": {"big": "x" * 1000}}),
    )

    assert_error(response, 400, "params_too_large")
    assert Execution.objects.count() == 1


def amplifying(source: str, copies: int = 20) -> dict:
    return {f"copy{i}": ref(source) for i in range(copies)}


def test_trigger_refuses_params_a_root_would_render_too_large(alice_client, post_json, settings, streams):
    settings.RENDERED_CONFIG_MAX_BYTES = 10_000
    execution_id = submitted(alice_client, node("small"), node("amplifier", config=amplifying("params.big")))

    response = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", json.dumps({"params": {"big": "x" * 1000}})
    )

    error = assert_error(response, 400, "config_too_large")
    assert error["details"] == {"node": "amplifier"}
    assert "10000" in error["message"]
    assert status_of(alice_client, execution_id)["status"] == "PENDING"
    assert not published_tasks(streams)
    ok = post_json(
        alice_client, f"/api/v1/workflow/trigger/{execution_id}", json.dumps({"params": {"big": "x"}})
    )
    assert ok.status_code == 202, ok.content


def test_a_child_rendered_too_large_fails_permanently_itself(alice_client, post_json, settings, streams):
    settings.RENDERED_CONFIG_MAX_BYTES = 10_000
    execution_id = submitted(
        alice_client,
        node("parent", config={"blob": "x" * 1000}),
        node("child", deps=("parent",), config=amplifying("parent.blob")),
    )
    post_json(alice_client, f"/api/v1/workflow/trigger/{execution_id}", "{}")
    [parent] = published_tasks(streams)

    queued = apply(run_handler(parent))

    assert queued == {}
    tasks = tasks_of(alice_client, execution_id)
    assert tasks["parent"]["status"] == "COMPLETED"
    assert tasks["child"]["status"] == "FAILED"
    assert tasks["child"]["error"]["code"] == "config_too_large"
    assert tasks["child"]["error"]["permanent"] is True
    assert tasks["child"]["config"] is None
    assert status_of(alice_client, execution_id)["status"] == "FAILED"


# --- per-user cap on open executions ------------------------------------------------------------


@pytest.mark.embedded
def test_submit_beyond_the_open_executions_cap_is_429(alice_client, bob_client, settings, cancel_as_alice):
    settings.MAX_OPEN_EXECUTIONS_PER_USER = 2
    first = submit(alice_client, workflow(node("a")))
    submitted(alice_client, node("a"))

    refused = alice_client.post("/api/v1/workflow", workflow(node("a")), format="json")
    another_run = alice_client.post(f"/api/v1/workflows/{first['workflow_id']}/executions")

    error = assert_error(refused, 429, "too_many_open_executions")
    assert error["details"] == {"limit": 2}
    assert_error(another_run, 429, "too_many_open_executions")
    assert Execution.objects.filter(owner__username="alice").count() == 2
    assert Workflow.objects.filter(owner__username="alice").count() == 2, "a refused submit writes nothing"
    assert submitted(bob_client, node("a")), "the cap is per user"
    cancel_as_alice(first["execution_id"])
    assert submitted(alice_client, node("a")), "an ended execution frees its place"


@pytest.mark.embedded
def test_the_cap_counts_running_executions_and_zero_turns_it_off(alice_client, post_json, settings):
    settings.MAX_OPEN_EXECUTIONS_PER_USER = 1
    execution_id = submitted(alice_client, node("a"))
    post_json(alice_client, f"/api/v1/workflow/trigger/{execution_id}", "{}")
    assert status_of(alice_client, execution_id)["status"] == "RUNNING"

    assert_error(alice_client.post("/api/v1/workflow", workflow(node("a")), format="json"), 429)

    settings.MAX_OPEN_EXECUTIONS_PER_USER = 0
    assert submitted(alice_client, node("a"))


@pytest.fixture
def cancel_as_alice(alice_client, django_capture_on_commit_callbacks):
    def cancel(execution_id: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            assert alice_client.delete(f"/api/v1/workflow/{execution_id}").status_code == 200

    return cancel


# --- node ids: 65-128 characters and Unicode were accepted ------------------------------------


@pytest.mark.parametrize("node_id", ["x" * 65, "caf\u00e9", "a\u00b2", "n\u0661", "\u212a", "a\u200bb"])
def test_submit_refuses_node_ids_outside_ascii_or_over_64_characters(alice_client, node_id):
    payload = workflow(node("fine"), node(node_id))

    error = assert_error(alice_client.post("/api/v1/workflow", payload, format="json"), 400, "invalid_dag")

    assert "node #1" in error["message"]
    assert "64" in error["message"]
    assert not TaskRun.objects.exists()


def test_a_64_character_node_id_is_accepted(alice_client):
    assert submitted(alice_client, node("x" * 64))
