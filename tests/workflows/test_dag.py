"""Workflow validation: what a submitter sees for good and bad payloads, and the compiled graph."""

import json
from itertools import pairwise

import pytest

from tests import reference_payloads
from workflows.dag import DagError, Limits, build_dag, from_definition, parse_workflow
from workflows.handlers import handler_names, load_handlers

PAYLOADS = reference_payloads.PATHS
HANDLERS = {"input", "output", "decision", "call_external_service", "call_llm"}


def node(node_id, *dependencies, handler="input", **fields):
    return {"id": node_id, "handler": handler, "dependencies": list(dependencies), **fields}


def workflow(*nodes, **fields):
    return {"name": "test", "dag": {"nodes": list(nodes)}, **fields}


def parse(*nodes, **fields):
    return parse_workflow(workflow(*nodes, **fields), handlers=HANDLERS)


def rejection(*nodes, **fields) -> DagError:
    with pytest.raises(DagError) as caught:
        parse(*nodes, **fields)
    return caught.value


def rejection_of(payload) -> DagError:
    with pytest.raises(DagError) as caught:
        parse_workflow(payload, handlers=HANDLERS)
    return caught.value


def test_reference_payloads_are_present():
    assert len(PAYLOADS) >= 8


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_every_reference_payload_parses_with_the_builtin_handlers(path):
    load_handlers([])
    payload = json.loads(path.read_text())

    dag = parse_workflow(payload, handlers=handler_names())

    assert dag.name == payload["name"]
    assert list(dag.nodes) == [raw["id"] for raw in payload["dag"]["nodes"]]
    assert sorted(dag.topological_order) == sorted(dag.nodes)
    assert dag.timeout_seconds == payload.get("timeout_seconds")


def test_linear_workflow_compiles_roots_children_and_order():
    dag = parse(node("a"), node("b", "a"), node("c", "b"))

    assert dag.roots == ("a",)
    assert dag.children == {"a": ("b",), "b": ("c",), "c": ()}
    assert dag.topological_order == ("a", "b", "c")


def test_topological_order_puts_every_node_after_its_dependencies():
    dag = parse(node("join", "left", "right"), node("left", "root"), node("right", "root"), node("root"))

    position = {node_id: index for index, node_id in enumerate(dag.topological_order)}
    for compiled in dag.nodes.values():
        for dependency in compiled.dependencies:
            assert position[dependency] < position[compiled.id]
    assert dag.roots == ("root",)
    assert list(dag.nodes) == ["join", "left", "right", "root"]


def test_several_roots_are_all_reported():
    dag = parse(node("a"), node("b"), node("c", "a", "b"))

    assert dag.roots == ("a", "b")


def test_missing_dependencies_and_config_default_to_empty():
    dag = parse({"id": "a", "handler": "input"}, {"id": "b", "handler": "input", "dependencies": None})

    assert dag.nodes["a"].dependencies == ()
    assert dag.nodes["a"].config == {}
    assert dag.nodes["b"].dependencies == ()
    assert dag.roots == ("a", "b")


def test_workflow_fields_are_kept():
    dag = parse(node("a"), name="  Nightly  ", description="d", timeout_seconds=2.5, strict_templates=True)

    assert dag.name == "Nightly"
    assert dag.description == "d"
    assert dag.timeout_seconds == 2.5
    assert dag.strict_templates is True


def test_duplicate_ids_are_rejected():
    error = rejection(node("a"), node("b", "a"), node("a"))

    assert error.code == "invalid_dag"
    assert error.node == "a"
    assert "duplicate" in error.message


def test_unknown_dependency_is_rejected_naming_both_nodes():
    error = rejection(node("a"), node("b", "ghost"))

    assert error.code == "invalid_dag"
    assert error.node == "b"
    assert "'ghost'" in error.message


def test_self_dependency_is_a_cycle():
    error = rejection(node("a", "a"))

    assert error.code == "cycle"
    assert error.node == "a"


def test_repeated_dependency_is_rejected():
    error = rejection(node("a"), node("b", "a", "a"))

    assert error.node == "b"


def cycle_in(error: DagError) -> list[str]:
    assert error.code == "cycle"
    prefix = "cycle detected: "
    assert error.message.startswith(prefix)
    return error.message.removeprefix(prefix).split(" -> ")


def assert_is_cycle(path: list[str], dag_nodes: list[dict], expected: set[str]):
    """The path closes on itself, visits exactly `expected`, and each step follows a dependency edge."""
    dependencies = {raw["id"]: set(raw["dependencies"]) for raw in dag_nodes}
    assert path[0] == path[-1]
    assert set(path) == expected
    assert len(path) == len(expected) + 1
    for before, after in pairwise(path):
        assert before in dependencies[after], f"{after} does not depend on {before}"


def test_three_node_cycle_names_the_nodes_in_execution_order():
    nodes = [node("a", "c"), node("b", "a"), node("c", "b")]

    error = rejection(*nodes)

    assert_is_cycle(cycle_in(error), nodes, {"a", "b", "c"})
    assert error.node in {"a", "b", "c"}


def test_two_node_cycle():
    nodes = [node("a", "b"), node("b", "a")]

    assert_is_cycle(cycle_in(rejection(*nodes)), nodes, {"a", "b"})


def test_cycle_message_leaves_out_nodes_that_merely_hang_off_the_cycle():
    # `_tail` sorts first and sits downstream of the loop; `root` feeds into it.
    nodes = [
        node("root"),
        node("a", "root", "c"),
        node("b", "a"),
        node("c", "b"),
        node("_tail", "c"),
        node("ok", "root"),
    ]

    error = rejection(*nodes)

    assert_is_cycle(cycle_in(error), nodes, {"a", "b", "c"})
    assert "_tail" not in error.message
    assert "root" not in cycle_in(error)


def test_a_dag_with_no_root_is_a_cycle():
    nodes = [node(f"n{i}", f"n{(i + 1) % 50}") for i in range(50)]

    path = cycle_in(rejection(*nodes))

    assert_is_cycle(path, nodes, {f"n{i}" for i in range(50)})


def test_unknown_handler_is_rejected():
    error = rejection(node("a", handler="launch_missiles"))

    assert error.code == "unknown_handler"
    assert error.node == "a"
    assert "'launch_missiles'" in error.message


@pytest.mark.parametrize("handler", ["", None, 3])
def test_handler_must_be_a_non_empty_string(handler):
    error = rejection({"id": "a", "handler": handler})

    assert error.node == "a"
    assert "handler" in error.message


def test_missing_handler_is_rejected():
    assert rejection({"id": "a"}).node == "a"


def test_templates_may_reference_ancestors_and_params():
    dag = parse(
        node("a"),
        node("b", "a", config={"x": "{{ a.value }}"}),
        node("c", "b", config={"deep": ["{{ a.value }}", {"p": "{{ params.user }}"}], "y": "{{b.z}}"}),
    )

    assert dag.nodes["b"].references == frozenset({"a"})
    assert dag.nodes["c"].references == frozenset({"a", "b"})


def test_params_alone_is_not_a_node_reference():
    dag = parse(node("a", config={"user": "{{ params.user }}", "all": "{{ params }}"}))

    assert dag.nodes["a"].references == frozenset()


def test_template_referencing_a_sibling_is_rejected():
    error = rejection(node("a"), node("b", "a"), node("c", "a", config={"x": "{{ b.out }}"}))

    assert error.code == "invalid_template"
    assert error.node == "c"
    assert "'b'" in error.message
    assert "ancestor" in error.message


def test_template_referencing_a_descendant_is_rejected():
    error = rejection(node("a", config={"x": "{{ b.out }}"}), node("b", "a"))

    assert error.code == "invalid_template"
    assert error.node == "a"


def test_template_referencing_its_own_node_is_rejected():
    error = rejection(node("a", config={"x": "{{ a.out }}"}))

    assert error.code == "invalid_template"
    assert error.node == "a"


def test_template_referencing_an_unknown_node_is_rejected():
    error = rejection(node("a"), node("b", "a", config={"x": "prefix {{ nowhere.out }}"}))

    assert error.code == "invalid_template"
    assert error.node == "b"
    assert "unknown node 'nowhere'" in error.message


def test_template_in_a_config_key_is_checked_too():
    error = rejection(node("a"), node("b"), node("c", "a", config={"{{ b.key }}": 1}))

    assert error.code == "invalid_template"
    assert error.node == "c"


def test_condition_references_must_be_ancestors():
    error = rejection(node("a"), node("b"), node("c", "a", condition="{{ b.ok }} == true"))

    assert error.code == "invalid_template"
    assert error.node == "c"


def test_condition_references_count_as_node_references():
    dag = parse(node("a"), node("b", "a", condition="{{ a.ok }} == true and \"{{ params.mode }}\" == 'x'"))

    assert dag.nodes["b"].condition is not None
    assert dag.nodes["b"].references == frozenset({"a"})


@pytest.mark.parametrize("condition", ["{{ a.ok }} ==", "maybe", "(1 == 1", "1 == 1 2", "   "])
def test_unparseable_condition_is_rejected(condition):
    error = rejection(node("a"), node("b", "a", condition=condition))

    assert error.code == "invalid_condition"
    assert error.node == "b"


def test_deeply_nested_condition_is_a_validation_error_not_a_crash():
    error = rejection(node("a", condition="(" * 500 + "true" + ")" * 500))

    assert error.code == "invalid_condition"
    assert error.node == "a"


def test_null_condition_means_no_condition():
    assert parse(node("a", condition=None)).nodes["a"].condition is None


def test_empty_node_list_is_rejected():
    assert rejection().code == "invalid_dag"


def test_max_nodes_limit():
    nodes = [node(f"n{i}") for i in range(4)]
    payload = workflow(*nodes)

    assert len(parse_workflow(payload, handlers=HANDLERS, limits=Limits(max_nodes=4)).nodes) == 4
    with pytest.raises(DagError) as caught:
        parse_workflow(workflow(*nodes, node("n4")), handlers=HANDLERS, limits=Limits(max_nodes=4))
    assert caught.value.code == "too_large"


def test_config_size_limit():
    limits = Limits(max_config_bytes=20)
    small = node("a", config={"k": "x" * 10})  # {"k":"xxxxxxxxxx"} is 18 bytes
    large = node("a", config={"k": "x" * 20})

    parse_workflow(workflow(small), handlers=HANDLERS, limits=limits)
    with pytest.raises(DagError) as caught:
        parse_workflow(workflow(large), handlers=HANDLERS, limits=limits)
    assert caught.value.code == "too_large"
    assert caught.value.node == "a"


def test_default_limits_allow_10000_nodes_but_not_more():
    nodes = [node(f"n{i}") for i in range(10_001)]

    error = rejection(*nodes)

    assert error.code == "too_large"


@pytest.mark.parametrize("payload", [None, [], "workflow", 7])
def test_body_must_be_an_object(payload):
    assert rejection_of(payload).code == "invalid_payload"


@pytest.mark.parametrize("name", [None, "", "   ", 5, "x" * 201])
def test_name_is_required(name):
    payload = workflow(node("a"))
    payload["name"] = name

    assert rejection_of(payload).code == "invalid_payload"


def test_name_missing_is_rejected():
    payload = workflow(node("a"))
    del payload["name"]

    error = rejection_of(payload)

    assert error.code == "invalid_payload"
    assert "'name'" in error.message


@pytest.mark.parametrize(
    "dag",
    [None, [], {"nodes": {"a": {}}}, {"nodes": None}, {"nodes": "a"}, {}],
    ids=["null", "list", "nodes-object", "nodes-null", "nodes-string", "no-nodes"],
)
def test_nodes_must_be_a_list_inside_dag(dag):
    assert rejection_of({"name": "x", "dag": dag}).code == "invalid_payload"


def test_dag_is_required():
    assert rejection_of({"name": "x"}).code == "invalid_payload"


def test_unknown_workflow_fields_are_rejected():
    error = rejection(node("a"), nodes=[])

    assert error.code == "invalid_payload"
    assert "'nodes'" in error.message


@pytest.mark.parametrize("field", ["description", "strict_templates"])
def test_optional_workflow_fields_are_type_checked(field):
    assert rejection(node("a"), **{field: 1}).code == "invalid_payload"


@pytest.mark.parametrize("raw", [None, "a", ["a"], 3])
def test_node_must_be_an_object(raw):
    error = rejection(node("a"), raw)

    assert "node #1" in error.message


@pytest.mark.parametrize("config", [[], "x", 3, True])
def test_config_must_be_an_object(config):
    error = rejection(node("a", config=config))

    assert error.node == "a"
    assert "'config'" in error.message


@pytest.mark.parametrize("dependencies", ["a", {"a": 1}, [1], ["a", None]])
def test_dependencies_must_be_a_list_of_ids(dependencies):
    error = rejection(node("a"), {"id": "b", "handler": "input", "dependencies": dependencies})

    assert error.node == "b"
    assert "'dependencies'" in error.message


@pytest.mark.parametrize(
    "node_id",
    [
        None,
        7,
        "",
        "1abc",
        "-a",
        "a b",
        "a.b",
        "a{",
        "x" * 65,
        "a\n",
        "caf\u00e9",
        "a\u00b2",
        "\u0661",
        "a\u200b",
    ],
)
def test_bad_ids_are_rejected(node_id):
    error = rejection({"id": node_id, "handler": "input"})

    assert "'id'" in error.message
    assert error.node is None


@pytest.mark.parametrize("node_id", ["a", "_", "A-b_9", "fetch-users", "x" * 64])
def test_good_ids_are_accepted(node_id):
    assert list(parse(node(node_id)).nodes) == [node_id]


def test_params_is_reserved():
    error = rejection(node("params"))

    assert error.node == "params"
    assert "reserved" in error.message


def test_unknown_node_fields_are_rejected():
    error = rejection(node("a", depends_on=["b"]))

    assert error.node == "a"
    assert "'depends_on'" in error.message


def test_valid_retry_is_kept():
    retry = {"max_attempts": 3, "backoff_base": 0.5, "backoff_max": 10, "jitter": 0}

    assert parse(node("a", retry=retry)).nodes["a"].retry == retry


@pytest.mark.parametrize(
    "retry",
    [
        [],
        "3",
        {"attempts": 3},
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"max_attempts": True},
        {"max_attempts": "3"},
        {"backoff_base": -1},
        {"backoff_max": "10"},
        {"jitter": False},
    ],
)
def test_invalid_retry_is_rejected(retry):
    error = rejection(node("a", retry=retry))

    assert error.node == "a"
    assert "retry" in error.message


@pytest.mark.parametrize("timeout", [1, 0.25])
def test_positive_timeouts_are_accepted(timeout):
    dag = parse(node("a", timeout_seconds=timeout), timeout_seconds=timeout)

    assert dag.nodes["a"].timeout_seconds == timeout
    assert dag.timeout_seconds == timeout


@pytest.mark.parametrize("timeout", [0, -1, "5", True, [5]])
def test_invalid_node_timeout_is_rejected(timeout):
    error = rejection(node("a", timeout_seconds=timeout))

    assert error.node == "a"
    assert "timeout_seconds" in error.message


@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_invalid_workflow_timeout_is_rejected(timeout):
    error = rejection(node("a"), timeout_seconds=timeout)

    assert "timeout_seconds" in error.message


def test_to_json_round_trips_through_from_definition():
    dag = parse(
        node("start", config={"x": 1}),
        node(
            "check",
            "start",
            handler="decision",
            config={"value_a": "{{ start.x }}"},
            retry={"max_attempts": 2},
            timeout_seconds=3,
        ),
        node("yes", "check", condition="{{ check.result }} == True"),
        node("no", "check", condition="not {{ check.result }}", config={"p": "{{ params.p }}"}),
        node(
            "each",
            "start",
            map_over="{{ start.items }}",
            config={"v": ["{{ item }}", {"at": "{{ index }}"}], "key": "{{ secrets.API_KEY }}"},
        ),
        node("plain", "start", config={"k": ["text", {"n": 1.5, "b": True, "z": None}]}),
        strict_templates=True,
    )

    definition = json.loads(json.dumps(dag.to_json()))
    rebuilt = from_definition(definition, name="again")

    assert rebuilt.nodes == dag.nodes
    assert [n.id for n in rebuilt.nodes.values() if n.static] == ["start", "plain"]
    assert rebuilt.nodes["each"].references == {"start"}
    assert rebuilt.children == dag.children
    assert rebuilt.roots == dag.roots
    assert rebuilt.topological_order == dag.topological_order
    assert rebuilt.strict_templates is True
    assert rebuilt.name == "again"
    assert rebuilt.to_json() == definition


def test_to_json_omits_unset_optional_fields():
    definition = parse(node("a")).to_json()

    assert definition == {"nodes": [{"id": "a", "handler": "input", "dependencies": [], "config": {}}]}


def test_from_definition_accepts_any_handler_and_size():
    definition = {"nodes": [{"id": "a", "handler": "retired_handler", "config": {"k": "x" * 100_000}}]}

    assert from_definition(definition).nodes["a"].handler == "retired_handler"


def test_build_dag_checks_handlers_only_when_given():
    raw = [node("a", handler="anything")]

    assert build_dag(raw, handlers=None, limits=Limits()).roots == ("a",)
    with pytest.raises(DagError):
        build_dag(raw, handlers=HANDLERS, limits=Limits())


def test_10000_node_chain_with_templates_validates():
    nodes = [node("n0")] + [
        node(f"n{i}", f"n{i - 1}", config={"v": "{{ n0.x }}", "prev": f"{{{{ n{i - 1}.x }}}}"})
        for i in range(1, 10_000)
    ]

    dag = parse(*nodes)

    assert len(dag.nodes) == 10_000
    assert dag.roots == ("n0",)
    assert dag.topological_order[-1] == "n9999"


def test_10000_node_chain_rejects_a_template_reaching_forward():
    nodes = [node("n0", config={"v": "{{ n9999.x }}"})] + [
        node(f"n{i}", f"n{i - 1}") for i in range(1, 10_000)
    ]

    error = rejection(*nodes)

    assert error.code == "invalid_template"
    assert error.node == "n0"


def test_10000_wide_fan_out_validates():
    nodes = [node("root")] + [node(f"leaf{i}", "root", config={"v": "{{ root.x }}"}) for i in range(9_999)]

    dag = parse(*nodes)

    assert len(dag.children["root"]) == 9_999
    assert dag.roots == ("root",)


def test_10000_wide_fan_in_validates():
    middle = [node(f"m{i}", "root") for i in range(9_998)]
    nodes = [node("root"), *middle, node("sink", *(m["id"] for m in middle), config={"r": "{{ root.x }}"})]

    dag = parse(*nodes)

    assert dag.topological_order[-1] == "sink"
    assert len(dag.nodes["sink"].dependencies) == 9_998


# --- hostile input: bounds on what one submission may ask for -----------------------------------


def test_description_is_capped_at_2000_characters():
    assert parse(node("a"), description="d" * 2000).description == "d" * 2000

    error = rejection(node("a"), description="d" * 2001)

    assert error.code == "invalid_payload"
    assert "2000" in error.message


def test_retry_max_attempts_is_bounded_by_the_limit():
    limits = Limits(max_retry_attempts=5)
    at_limit = workflow(node("a", retry={"max_attempts": 5}))
    assert parse_workflow(at_limit, handlers=HANDLERS, limits=limits).nodes["a"].retry == {"max_attempts": 5}

    with pytest.raises(DagError) as caught:
        parse_workflow(workflow(node("a", retry={"max_attempts": 6})), handlers=HANDLERS, limits=limits)

    assert caught.value.node == "a"
    assert caught.value.code == "too_large"
    assert "retry.max_attempts" in caught.value.message
    assert "5" in caught.value.message


def test_retry_max_attempts_has_a_default_bound_of_100():
    assert rejection(node("a", retry={"max_attempts": 10**30})).node == "a"


@pytest.mark.parametrize(
    "fields",
    [
        {"config": {"x": "{{ params.items.%s }}" % ("0" * 5000)}},
        {"config": {"x": "first: {{ params.items.%s.id }}" % ("1" * 40)}},
        {"config": {"{{ params.%s }}" % ("2" * 40): 1}},
        {"condition": "{{ params.items.%s }} == 1" % ("0" * 4000)},
        {"condition": "'{{ params.items.%s }}' == 'x'" % ("3" * 40)},
    ],
    ids=["config_5000_digits", "config_in_text", "config_key", "condition", "condition_string"],
)
def test_an_over_long_list_index_is_rejected_naming_the_node(fields):
    error = rejection(node("ok"), node("reads", **fields))

    assert error.node == "reads"
    assert error.code == "invalid_template"
    assert "digits" in error.message
    assert len(error.message) < 300


def test_stored_definitions_load_under_the_rules_they_were_accepted_with():
    """Ids, sizes, retry counts and template paths that today's submit refuses, but an older one
    accepted: a stored workflow must still load, or its executions could never run."""
    long_id, unicode_id = "x" * 100, "caf\u00e9"
    definition = {
        "nodes": [
            {"id": long_id, "handler": "input", "dependencies": [], "config": {"k": "x" * 100_000}},
            {
                "id": unicode_id,
                "handler": "input",
                "dependencies": [long_id],
                "config": {"x": "{{ params.items.%s }}" % ("0" * 5000)},
                "retry": {"max_attempts": 10**6},
            },
        ]
    }

    dag = from_definition(definition)

    assert dag.roots == (long_id,)
    assert dag.nodes[unicode_id].retry == {"max_attempts": 10**6}
