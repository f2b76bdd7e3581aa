"""Property: whatever JSON (or not-quite-JSON) a client sends, the API answers 2xx or a 4xx in the
one error shape, never a 5xx. Generated workflows, trigger params, list filters and path ids, valid
and invalid: random node ids and dependencies, nested configs, templates (long list indexes
included), conditions, retries, huge and non-finite numbers, duplicate keys, NUL characters and
lone surrogates.

Each example runs in a savepoint that is rolled back, so examples never see each other's rows and
one that breaks the transaction (a 500 from PostgreSQL) cannot fail the ones after it.
"""

import json
from collections.abc import Callable
from urllib.parse import quote

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests.workflows.api_driver import (
    apply,
    exhausted_failure,
    published_tasks,
    reference_payload,
    run_handler,
)

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the shared checkout
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


class Raw:
    """A JSON literal written as is: numbers Python's json cannot write (1e400) or refuses to read."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:30]!r})"


class Pairs(list):
    """A JSON object as key/value pairs: keys may repeat."""


def to_json(value) -> str:
    """Serialise what the strategies build; Python's json would drop duplicate keys and Raw."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(key)}:{to_json(item)}" for key, item in value) + "}"
    if isinstance(value, dict):
        return to_json(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value)  # NaN and Infinity come out as the bare literals


# --- strategies ---------------------------------------------------------------------------------
# Clean values (any JSON PostgreSQL stores) and hostile ones (plus numbers it refuses, NUL, lone
# surrogates, repeated keys). A body is refused at its first anomaly, so the mix is: clean workflows
# (the deeper checks and the 201 path), clean workflows with exactly one oddity (each anomaly on its
# own), hostile workflows, and bodies that are barely JSON.

NODE_POOL = ["a", "b", "c", "d", "fetch-1", "_x"]
wild_ids = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,70}", fullmatch=True),
    st.text(max_size=12),
    st.sampled_from(["params", "caf\u00e9", "a\u00b2", "\u0661", "x" * 65, "", "a.b", "a\x00", "1abc"]),
)
node_ids = st.one_of(st.sampled_from(NODE_POOL), wild_ids)
# True now and then: hypothesis favours boundary values and early elements, so integers(0, 7) == 0
# would come up far more often than one time in eight.
rarely = st.sampled_from(range(8)).map(lambda n: n == 5)
odd_steps = st.sampled_from(["0" * 32, "0" * 33, "0" * 5000, "-" + "9" * 40, "x-y", "\u0661", "-0"])
path_steps = st.one_of(st.from_regex(r"[a-z]{1,4}", fullmatch=True), st.integers(-3, 5).map(str))


@st.composite
def paths(draw, roots: list[str]) -> str:
    """`root.step.step`: an ancestor or `params`, now and then a node that is not there or a step
    no lookup can follow."""
    root = draw(st.sampled_from([*roots, "params"]))
    if draw(rarely):
        root = draw(st.sampled_from(["nowhere", *NODE_POOL]))
    steps = draw(st.lists(path_steps, max_size=3))
    if draw(rarely):
        steps.append(draw(odd_steps))
    return ".".join([root, *steps])


def templates(roots: list[str]) -> st.SearchStrategy[str]:
    """`{{ path }}` alone (keeps the value's type) or inside text (interpolated)."""
    return st.one_of(
        paths(roots).map(lambda path: "{{ " + path + " }}"),
        st.tuples(st.text(max_size=5), paths(roots), st.text(max_size=5)).map(
            lambda parts: f"{parts[0]}{{{{ {parts[1]} }}}}{parts[2]}"
        ),
    )


CLEAN_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
CLEAN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    CLEAN_TEXT,
)
HOSTILE = st.one_of(
    CLEAN,
    st.sampled_from(
        [Raw("1e400"), Raw("-1e400"), Raw("1e-400"), Raw("9" * 5000), Raw("-0"), Raw("2.5e308"), Raw("NaN")]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "half \udfff", "\u0661\u0662", "\u00b2"]),
)


def json_values(scalars: st.SearchStrategy, roots: list[str] = ()) -> st.SearchStrategy:
    """Nested JSON of `scalars` and templates reading `roots`; hostile objects may repeat a key."""
    keys = CLEAN_TEXT if scalars is CLEAN else st.text(max_size=6)
    objects = [st.dictionaries(keys, st.deferred(lambda: values), max_size=4)]
    if scalars is HOSTILE:
        pairs = st.tuples(st.sampled_from(["k", "k", "{{ params.k }}"]), st.deferred(lambda: values))
        objects.append(st.lists(pairs, max_size=3).map(Pairs))
    values = st.recursive(
        st.one_of(scalars, scalars, templates(list(roots))),
        lambda children: st.one_of(st.lists(children, max_size=4), *objects),
        max_leaves=10,
    )
    return values


def conditions(scalars: st.SearchStrategy, roots: list[str]) -> st.SearchStrategy:
    operators = st.sampled_from(["==", "!=", "<", ">=", "in", "not in"])
    return st.one_of(
        st.tuples(templates(roots), operators, scalars).map(lambda p: f"{p[0]} {p[1]} {to_json(p[2])}"),
        st.tuples(templates(roots), templates(roots)).map(lambda p: f"{p[0]} and not {p[1]}"),
        st.sampled_from(["1e400 == {{ params.x }}", "(" * 40 + "1" + ")" * 40, "1" * 4000, "1 ==", "true"]),
        st.text(max_size=20),
        scalars,
    )


def retries(scalars: st.SearchStrategy) -> st.SearchStrategy:
    numbers = st.one_of(st.integers(0, 120), st.floats(0, 100), st.sampled_from([10**30, 1025, 101]))
    return st.one_of(
        st.dictionaries(st.sampled_from(["max_attempts", "backoff_base", "backoff_max", "jitter"]), numbers),
        st.dictionaries(st.sampled_from(["max_attempts", "jitter", "colour"]), scalars, max_size=2),
    )


@st.composite
def node_lists(draw, scalars: st.SearchStrategy) -> list:
    """Nodes that depend on earlier ones and read their ancestors: a valid DAG unless one of the
    rare oddities is drawn."""
    ids = draw(st.permutations(NODE_POOL))[: draw(st.integers(1, len(NODE_POOL)))]
    ids = [draw(node_ids) if draw(rarely) else node_id for node_id in ids]
    keys = CLEAN_TEXT if scalars is CLEAN else st.text(max_size=8)
    nodes = []
    for position, node_id in enumerate(ids):
        earlier = [i for i in ids[:position] if isinstance(i, str)]
        raw = {"id": node_id, "handler": draw(st.sampled_from(["input", "output", "decision"]))}
        if draw(rarely):
            raw["handler"] = draw(st.one_of(st.just("teleport"), scalars))
        if earlier and draw(st.booleans()):
            raw["dependencies"] = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        if draw(rarely):
            raw["dependencies"] = draw(st.one_of(st.lists(node_ids, max_size=3), scalars))
        if draw(st.booleans()):
            raw["config"] = draw(st.dictionaries(keys, json_values(scalars, earlier), max_size=4))
        if draw(rarely):
            raw["config"] = draw(json_values(scalars))
        if draw(rarely):
            raw["condition"] = draw(conditions(scalars, earlier))
        if draw(rarely):
            raw["retry"] = draw(retries(scalars))
        if draw(rarely):
            raw["timeout_seconds"] = draw(st.one_of(st.floats(0.1, 100), scalars))
        if draw(rarely) and draw(rarely):
            raw[draw(st.sampled_from(["colour", "deps"]))] = draw(scalars)
        nodes.append(raw)
    return nodes


@st.composite
def workflows(draw, scalars: st.SearchStrategy) -> dict:
    """Usually a valid shape around the generated nodes; each top-level oddity now and then."""
    dag = {"nodes": draw(node_lists(scalars))}
    if draw(rarely) and draw(rarely):
        dag = draw(st.one_of(json_values(scalars), st.just({**dag, "edges": []})))
    payload = {"name": "generated", "dag": dag}
    if draw(rarely):
        payload["name"] = draw(st.one_of(st.text(max_size=10), st.just(" "), scalars))
    if draw(rarely):
        payload["description"] = draw(st.one_of(st.text(max_size=20), st.just("d" * 2001), scalars))
    if draw(rarely):
        payload["timeout_seconds"] = draw(st.one_of(st.floats(0.1, 1e6), scalars))
    if draw(rarely):
        payload["strict_templates"] = draw(st.one_of(st.booleans(), scalars))
    if draw(rarely) and draw(rarely):
        payload["extra"] = draw(scalars)
    return payload


UNSTORABLE = [Raw("1e400"), Raw("-1e400"), Raw("2.5e308"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity")]
ODDITIES = st.sampled_from(
    [
        *UNSTORABLE,
        Raw("9" * 5000),
        "\x00",
        "a\x00b",
        "\ud800",
        "{{ params.items.%s }}" % ("0" * 5000),
        "d" * 70_000,
        10**40,
        2**63,
        Pairs([("k", 1), ("k", 2)]),
        [[[[[[]]]]]],
    ]
)


@st.composite
def with_one_oddity(draw) -> dict:
    """A clean workflow with one value made hostile, most often in a node's config (where a value
    can be anything, so nothing else refuses the workflow first): the one anomaly cannot hide
    behind another."""
    payload = draw(workflows(CLEAN))
    spots, configs, pending = [], [], [payload]
    while pending:
        container = pending.pop()
        for key in container if isinstance(container, dict) else range(len(container)):
            spots.append((container, key))
            if key == "config" and isinstance(container[key], dict):
                configs.append(container[key])
            if isinstance(container[key], (dict, list)):
                pending.append(container[key])
    oddity = draw(st.one_of(ODDITIES, st.sampled_from(UNSTORABLE)))
    if configs and not draw(rarely):
        draw(st.sampled_from(configs))[draw(st.sampled_from(["x", "nested"]))] = oddity
    else:
        container, key = draw(st.sampled_from(spots[::-1]))  # hypothesis favours the first: nested spots
        container[key] = oddity
    return payload


bodies = st.one_of(
    *[workflows(CLEAN).map(to_json)] * 6,
    *[with_one_oddity().map(to_json)] * 6,
    *[workflows(HOSTILE).map(to_json)] * 2,
    json_values(HOSTILE).map(to_json),
    st.text(max_size=40),
    workflows(CLEAN).map(lambda payload: to_json(payload)[:-1]),  # truncated
)
query_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "\x00",
            "a\x00",
            "\u00b2",
            "\u0661",
            "-1",
            "0",
            "1",
            "500",
            "501",
            "9" * 25,
            "9223372036854775808",
            "1e3",
            "1_0",
            "open",
            "FAILED",
            "call_external_service",
            "00000000-0000-0000-0000-000000000000",
        ]
    ),
)
path_ids = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(
        ["\x00", "\u00b2", "\u0661" * 32, "9" * 30, "-1", "1", "00000000-0000-0000-0000-000000000000"]
    ),
)


# --- the property -------------------------------------------------------------------------------


class _Undo(Exception):
    pass


def isolated(call: Callable[[], object]):
    """Run `call` in a savepoint that is always rolled back (it may leave the transaction broken)."""
    result = None
    try:
        with transaction.atomic():
            result = call()
            raise _Undo
    except _Undo:
        pass
    return result


def assert_answered_cleanly(response, allowed: set[int]) -> None:
    """`allowed` success statuses, or a 4xx in the one error shape; never a 5xx."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code in allowed:
        event(str(response.status_code))
        return
    assert 400 <= response.status_code < 500, response.content[:500]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    event(f"{response.status_code} {body['error']['code']}")


@pytest.fixture
def client(alice_client, streams) -> APIClient:
    alice_client.raise_request_exception = False
    return alice_client


@PROPERTY
@given(body=bodies)
def test_submit_answers_any_body_with_201_or_a_clean_4xx(client, body):
    response = isolated(lambda: client.post("/api/v1/workflow", body, content_type="application/json"))

    assert_answered_cleanly(response, {201})


TRIGGER_WORKFLOW = {
    "name": "reads params every way",
    "strict_templates": False,
    "dag": {
        "nodes": [
            {
                "id": "whole",
                "handler": "input",
                "config": {"x": "{{ params.x }}", "deep": "{{ params.a.0.b }}"},
            },
            {
                "id": "text",
                "handler": "input",
                "config": {"s": "got {{ params.x }} and {{ params.list.-1 }}"},
            },
            {"id": "gated", "handler": "input", "condition": "{{ params.n }} > 3 and {{ params.flag }}"},
            {"id": "member", "handler": "input", "condition": "'a' in {{ params.list }}"},
            {
                "id": "after",
                "handler": "output",
                "dependencies": ["whole", "gated"],
                "config": {"y": "{{ whole.x }}"},
            },
        ]
    },
}
params_names = st.sampled_from(["x", "a", "list", "n", "flag"])
params_bodies = st.one_of(
    *[st.fixed_dictionaries({"params": st.dictionaries(params_names, json_values(CLEAN))})] * 3,
    st.fixed_dictionaries({"params": st.dictionaries(params_names, json_values(HOSTILE))}),
    st.fixed_dictionaries({"params": json_values(HOSTILE)}),
    st.lists(st.tuples(st.sampled_from(["params", "params", "other"]), json_values(HOSTILE)), max_size=3).map(
        Pairs
    ),
    json_values(HOSTILE),
).map(to_json)


@PROPERTY
@given(body=st.one_of(params_bodies, st.text(max_size=30)))
def test_trigger_answers_any_params_with_202_or_a_clean_4xx(client, body):
    def submit_and_trigger():
        submitted = client.post("/api/v1/workflow", TRIGGER_WORKFLOW, format="json")
        assert submitted.status_code == 201, submitted.content
        execution_id = submitted.json()["execution_id"]
        return client.post(f"/api/v1/workflow/trigger/{execution_id}", body, content_type="application/json")

    assert_answered_cleanly(isolated(submit_and_trigger), {202})


@pytest.fixture
def failed_execution(client, django_capture_on_commit_callbacks, streams) -> str:
    """A failed execution with a dead letter, so that every list and filter has rows to page."""
    execution_id = client.post(
        "/api/v1/workflow", reference_payload("linear_workflow"), format="json"
    ).json()["execution_id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/v1/workflow/trigger/{execution_id}")
    tasks = {task.node_id: task for task in published_tasks(streams)}
    ready = apply(run_handler(tasks["start"]))
    apply(exhausted_failure(ready["process"], "upstream said no"))
    return execution_id


LISTS = {
    "/api/v1/executions": ["status", "workflow", "limit", "offset"],
    "/api/v1/workflows": ["limit", "offset"],
    "/api/v1/executions/{execution}/tasks": ["limit", "offset"],
    "/api/v1/admin/dlq": ["status", "handler", "category", "execution", "limit", "offset"],
    "/api/v1/workflow/{execution}": ["wait"],
}


@PROPERTY
@given(data=st.data())
def test_every_list_and_filter_answers_200_or_a_clean_4xx(operator_client, failed_execution, data):
    operator_client.raise_request_exception = False
    url = data.draw(st.sampled_from(list(LISTS)))
    names = LISTS[url]
    query = data.draw(st.dictionaries(st.sampled_from([*names, "unknown"]), query_values, max_size=3))

    response = isolated(lambda: operator_client.get(url.format(execution=failed_execution), query))

    assert_answered_cleanly(response, {200})


DETAIL_URLS = [
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
    ("get", "/api/v1/admin/dlq/{id}"),
    ("post", "/api/v1/admin/dlq/{id}/retry"),
    ("delete", "/api/v1/admin/dlq/{id}"),
]


@PROPERTY
@given(endpoint=st.sampled_from(DETAIL_URLS), raw_id=path_ids)
def test_every_path_id_answers_cleanly(operator_client, endpoint, raw_id):
    operator_client.raise_request_exception = False
    method, url = endpoint
    path = url.format(id=quote(raw_id, safe=""))

    response = isolated(lambda: getattr(operator_client, method)(path))

    assert_answered_cleanly(response, {200, 201, 202})
