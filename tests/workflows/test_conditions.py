"""Node conditions: the small expression language that decides whether a node runs or is skipped."""

import pytest

from workflows.conditions import MAX_LENGTH, MAX_NESTING, ConditionError, compile_condition

SCOPE = {
    "is_yes": {"result": True},
    "is_no": {"result": False},
    "fetch": {
        "status": 200,
        "ratio": 0.5,
        "name": "Ada",
        "tags": ["red", "blue"],
        "body": "error: timeout",
        "nothing": None,
        "user": {"id": 7},
    },
    "params": {"mode": "fast", "limit": 3},
}


def holds(source: str, scope=SCOPE) -> bool:
    return compile_condition(source).evaluate(scope)


def test_seed_true_branch_condition():
    condition = compile_condition("{{ is_yes.result }} == True")

    assert condition.evaluate({"is_yes": {"result": True}}) is True
    assert condition.evaluate({"is_yes": {"result": False}}) is False


def test_seed_false_branch_condition():
    condition = compile_condition("{{ is_yes.result }} == False")

    assert condition.evaluate({"is_yes": {"result": False}}) is True
    assert condition.evaluate({"is_yes": {"result": True}}) is False


def test_condition_keeps_its_source_and_references():
    condition = compile_condition("{{ is_yes.result }} and \"{{ params.mode }}-{{ fetch.name }}\" != ''")

    assert condition.source == "{{ is_yes.result }} and \"{{ params.mode }}-{{ fetch.name }}\" != ''"
    assert condition.references == frozenset({"is_yes", "params", "fetch"})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ fetch.status }} == 200", True),
        ("{{ fetch.status }} == 201", False),
        ("{{ fetch.status }} != 200", False),
        ("{{ fetch.status }} != 500", True),
        ("{{ fetch.status }} < 300", True),
        ("{{ fetch.status }} < 200", False),
        ("{{ fetch.status }} <= 200", True),
        ("{{ fetch.status }} <= 199", False),
        ("{{ fetch.status }} > 199", True),
        ("{{ fetch.status }} > 200", False),
        ("{{ fetch.status }} >= 200", True),
        ("{{ fetch.status }} >= 201", False),
        ("{{ fetch.name }} == 'Ada'", True),
        ("{{ fetch.name }} < 'B'", True),
        ("{{ fetch.user }} == {{ fetch.user }}", True),
        ("{{ fetch.tags }} == ['red', 'blue']", True),
    ],
)
def test_comparison_operators(source, expected):
    assert holds(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ fetch.ratio }} == 0.5", True),
        ("{{ fetch.ratio }} < 1", True),
        ("{{ fetch.ratio }} > -0.25", True),
        ("{{ fetch.status }} == 2e2", True),
        ("{{ fetch.status }} == 200.0", True),
        ("-1 < 0", True),
        ("1.5E1 == 15", True),
    ],
)
def test_numbers_and_floats(source, expected):
    assert holds(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("false", False),
        ("False", False),
        ("null", False),
        ("NULL", False),
        ("{{ fetch.nothing }} == null", True),
        ("{{ fetch.nothing }} == Null", True),
        ("{{ is_no.result }} == false", True),
        ("{{ is_yes.result }} == TRUE", True),
    ],
)
def test_true_false_null_in_either_case(source, expected):
    assert holds(source) is expected


def test_a_bare_reference_is_tested_for_truth():
    assert holds("{{ is_yes.result }}") is True
    assert holds("{{ is_no.result }}") is False
    assert holds("{{ fetch.tags }}") is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true and false", False),
        ("true or false", True),
        ("not true", False),
        ("not false", True),
        ("not not true", True),
        # `and` binds tighter than `or`: true or (false and false)
        ("true or false and false", True),
        # ... so this is (false and false) or true
        ("false and false or true", True),
        ("(true or false) and false", False),
        # `not` binds tighter than `and`/`or` but looser than comparisons
        ("not false and false", False),
        ("not (false and false)", True),
        ("not {{ fetch.status }} == 500", True),
        ("not {{ fetch.status }} == 200 or true", True),
        ("not ({{ fetch.status }} == 200 or true)", False),
        ("TRUE AND NOT FALSE", True),
        ("((({{ fetch.status }} == 200)))", True),
    ],
)
def test_boolean_operators_and_precedence(source, expected):
    assert holds(source) is expected


def test_and_or_short_circuit_so_the_other_side_is_not_evaluated():
    # The right-hand sides would raise a type error if evaluated.
    assert holds("false and {{ fetch.nothing }} < 1") is False
    assert holds("true or {{ fetch.nothing }} < 1") is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'red' in {{ fetch.tags }}", True),
        ("'green' in {{ fetch.tags }}", False),
        ("'green' not in {{ fetch.tags }}", True),
        ("'red' not in {{ fetch.tags }}", False),
        ("{{ params.mode }} in ['fast', 'slow']", True),
        ("{{ params.limit }} in [1, 2]", False),
        ("{{ params.limit }} not in [1, 2]", True),
        ("'timeout' in {{ fetch.body }}", True),
        ("'TIMEOUT' in {{ fetch.body }}", False),
        ("'time' not in 'timeout'", False),
        ("3 in []", False),
        ("[1, 2] == [1, 2]", True),
        ("'id' in {{ fetch.user }}", True),
        ("not 'red' in {{ fetch.tags }}", False),
    ],
)
def test_membership(source, expected):
    assert holds(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'a' == \"a\"", True),
        ("'it\\'s' == \"it's\"", True),
        ("'a \"quoted\" word' == 'a \"quoted\" word'", True),
        ("'{{ params.mode }}' == 'fast'", True),
        ("'mode={{ params.mode }}/{{params.limit}}' == 'mode=fast/3'", True),
        ("\"{{ fetch.name }}\" != 'Bob'", True),
        ("'{{ fetch.status }}' == 200", False),
        ("'{{ fetch.status }}' == '200'", True),
        ("'{{ fetch.tags }}' == '[\"red\",\"blue\"]'", True),
        ("'{{ fetch.user }}' == '{\"id\":7}'", True),
        ("'{{ ghost.x }}' == '{{ ghost.x }}'", True),
        ("'and or not' == 'and or not'", True),
    ],
)
def test_quoted_strings_interpolate_references_as_text(source, expected):
    assert holds(source) is expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ ghost.result }} == null",
        "{{ fetch.absent }} == null",
        "{{ fetch.tags.5 }} == null",
        "not {{ ghost.result }}",
    ],
)
def test_unresolved_reference_evaluates_as_null(source):
    assert holds(source) is True


def test_unresolved_reference_with_an_empty_scope():
    assert compile_condition("{{ is_yes.result }} == True").evaluate({}) is False
    assert compile_condition("{{ is_yes.result }} == False").evaluate({}) is False


def test_params_are_visible():
    assert holds("{{ params.mode }} == 'fast' and {{ params.limit }} >= 3") is True


@pytest.mark.parametrize(
    "source",
    [
        "yes",
        "{{ a.b }} == maybe",
        "__import__",
        "{{ a.b }} is None",
        "(1 == 1",
        "((true)",
        "1 == 1)",
        "true false",
        "1 == 1 2",
        "1 < 2 < 3",
        "{{ a.b }} ==",
        "== 1",
        "1 not 2",
        "[1, 2",
        "[1 2]",
        "'unterminated",
        "1 + 1",
        "a.b == 1",
        "{ a.b } == 1",
        "not",
        "()",
    ],
)
def test_parse_errors(source):
    with pytest.raises(ConditionError):
        compile_condition(source)


@pytest.mark.parametrize("source", ["", "   ", "\n\t", None, 1, True])
def test_empty_or_non_string_condition_is_rejected(source):
    with pytest.raises(ConditionError, match="non-empty string"):
        compile_condition(source)


def test_unknown_bare_word_error_says_to_quote_strings():
    with pytest.raises(ConditionError, match=r"unknown name 'maybe'.*quote"):
        compile_condition("{{ a.b }} == maybe")


def test_overlong_condition_is_rejected():
    with pytest.raises(ConditionError, match="longer than"):
        compile_condition("1 == " + "1" * MAX_LENGTH)


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("(", ")"), ("not ", ""), ("[", "]")],
    ids=["parentheses", "not", "lists"],
)
def test_nesting_is_bounded(opening, closing):
    allowed = opening * MAX_NESTING + "1" + closing * MAX_NESTING
    deep = opening * 1000 + "1" + closing * 1000

    compile_condition(allowed).evaluate({})
    with pytest.raises(ConditionError, match="nested"):
        compile_condition(deep)


@pytest.mark.parametrize(
    "source",
    [
        "{{ fetch.nothing }} < 1",
        "{{ fetch.name }} > 3",
        "'a' in 5",
        "1 in 'abc'",
        "[1] in {{ fetch.user }}",
        "{{ fetch.user }} < {{ fetch.user }}",
        "{{ ghost.x }} >= 0",
    ],
)
def test_type_errors_on_evaluation_raise_condition_error(source):
    condition = compile_condition(source)

    with pytest.raises(ConditionError, match="cannot evaluate"):
        condition.evaluate(SCOPE)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('touch pwned') == 0",
        "{{ a.b }}.__class__ == 1",
        "open('/etc/passwd')",
        "exec('1')",
        "lambda: 1",
        "1 if true else 2",
        "{{ __import__ }}('os')",
    ],
)
def test_python_code_cannot_run(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConditionError):
        compile_condition(source).evaluate({"a": {"b": 1}, "__import__": __import__})

    assert not (tmp_path / "pwned").exists()


def test_a_quoted_python_expression_is_only_a_string():
    condition = compile_condition("'__import__(\"os\").getcwd()' == '__import__(\"os\").getcwd()'")

    assert condition.evaluate({}) is True
    assert condition.references == frozenset()


def test_dunder_paths_only_read_dict_keys():
    # `lookup` walks mappings and lists; it never falls back to attribute access.
    assert holds("{{ fetch.__class__ }} == null") is True
    assert holds("{{ fetch.name.__len__ }} == null") is True


def test_a_compiled_condition_is_reused_across_scopes():
    condition = compile_condition("{{ fetch.status }} >= 500")

    assert condition.evaluate({"fetch": {"status": 503}}) is True
    assert condition.evaluate({"fetch": {"status": 200}}) is False
