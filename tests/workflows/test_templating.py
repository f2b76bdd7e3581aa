"""`{{ node.path }}` templates: which references a config has and what it resolves to."""

import pytest

from workflows.templating import (
    MAX_INDEX_DIGITS,
    ConfigTooLarge,
    TemplateError,
    check_path,
    iter_references,
    json_size,
    referenced_roots,
    resolve,
)

SCOPE = {
    "fetch": {
        "status": 200,
        "ok": True,
        "missing": None,
        "data": {"user": {"name": "Ada", "tags": ["x", "y"]}},
        "items": [{"id": 1}, {"id": 2}, {"id": 3}],
        "ratio": 0.5,
        "text": "hello",
    },
    "fetch-2": {"value": "dash"},
    "params": {"user": "u1", "limit": 10},
}


def test_whole_string_reference_resolves_to_the_value():
    assert resolve("{{ fetch.text }}", SCOPE) == "hello"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ fetch.status }}", 200),
        ("{{ fetch.ok }}", True),
        ("{{ fetch.missing }}", None),
        ("{{ fetch.ratio }}", 0.5),
        ("{{ fetch.data.user }}", {"name": "Ada", "tags": ["x", "y"]}),
        ("{{ fetch.items }}", [{"id": 1}, {"id": 2}, {"id": 3}]),
        ("{{ fetch }}", SCOPE["fetch"]),
    ],
)
def test_whole_string_reference_keeps_the_value_type(template, expected):
    result = resolve(template, SCOPE)

    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ fetch.data.user.name }}", "Ada"),
        ("{{ fetch.data.user.tags.1 }}", "y"),
        ("{{ fetch.items.0.id }}", 1),
        ("{{ fetch.items.2.id }}", 3),
        ("{{ fetch.items.-1.id }}", 3),
    ],
)
def test_nested_paths_and_list_indexes(template, expected):
    assert resolve(template, SCOPE) == expected


def test_params_are_resolved_like_a_node():
    assert resolve("{{ params.limit }}", SCOPE) == 10
    assert resolve("user={{ params.user }}", SCOPE) == "user=u1"


def test_node_ids_with_dashes_resolve():
    assert resolve("{{ fetch-2.value }}", SCOPE) == "dash"


@pytest.mark.parametrize(
    "template",
    ["{{fetch.text}}", "{{ fetch.text }}", "{{   fetch.text\t}}", "{{\nfetch.text\n}}", "{{fetch.text }}"],
)
def test_whitespace_inside_the_braces_does_not_matter(template):
    assert resolve(template, SCOPE) == "hello"
    assert list(iter_references(template)) == ["fetch.text"]


def test_text_around_a_reference_interpolates_as_text():
    assert resolve("Bearer {{ fetch.text }}!", SCOPE) == "Bearer hello!"
    assert resolve("status {{ fetch.status }}, ratio {{fetch.ratio}}", SCOPE) == "status 200, ratio 0.5"


def test_two_references_in_one_string_are_both_interpolated():
    assert resolve("{{ fetch.text }}{{ params.user }}", SCOPE) == "hellou1"


def test_containers_and_null_interpolate_as_json():
    assert resolve("user: {{ fetch.data.user }}", SCOPE) == 'user: {"name":"Ada","tags":["x","y"]}'
    assert resolve("ids: {{ fetch.items }}", SCOPE) == 'ids: [{"id":1},{"id":2},{"id":3}]'
    assert resolve("was {{ fetch.missing }}", SCOPE) == "was null"


@pytest.mark.parametrize(
    "template",
    [
        "{{ nowhere.value }}",
        "{{ fetch.nope }}",
        "{{ fetch.data.user.name.deeper }}",
        "{{ fetch.items.3 }}",
        "{{ fetch.items.-4 }}",
        "{{ fetch.items.first }}",
        "{{ fetch.items.--1 }}",
        "{{ fetch.items.² }}",
        "{{  params.absent  }}",
    ],
)
def test_unresolved_whole_reference_is_left_exactly_as_written(template):
    assert resolve(template, SCOPE) == template


def test_unresolved_reference_inside_text_is_left_exactly_as_written():
    template = "a {{fetch.nope}} b {{ fetch.text }} c {{  ghost.x }}"

    assert resolve(template, SCOPE) == "a {{fetch.nope}} b hello c {{  ghost.x }}"


@pytest.mark.parametrize("template", ["{{ ghost.x }}", "see {{ fetch.nope }}", "{{ fetch.items.9 }}"])
def test_strict_mode_raises_on_an_unresolved_reference(template):
    with pytest.raises(TemplateError, match="unresolved reference"):
        resolve({"nested": [template]}, SCOPE, strict=True)


def test_strict_mode_resolves_what_it_can():
    assert resolve({"a": "{{ fetch.status }}", "b": "x{{ params.user }}"}, SCOPE, strict=True) == {
        "a": 200,
        "b": "xu1",
    }


def test_strict_mode_treats_a_null_value_as_resolved():
    assert resolve("{{ fetch.missing }}", SCOPE, strict=True) is None


def test_dicts_and_lists_are_resolved_recursively():
    config = {
        "url": "https://x/{{ params.user }}",
        "headers": {"X-Status": "{{ fetch.status }}"},
        "list": ["{{ fetch.ok }}", ["{{ fetch.items.1 }}"], 3, None, False],
    }

    assert resolve(config, SCOPE) == {
        "url": "https://x/u1",
        "headers": {"X-Status": 200},
        "list": [True, [{"id": 2}], 3, None, False],
    }


def test_resolve_returns_a_copy_and_leaves_the_config_alone():
    config = {"a": ["{{ fetch.text }}"]}

    resolved = resolve(config, SCOPE)

    assert config == {"a": ["{{ fetch.text }}"]}
    assert resolved == {"a": ["hello"]}


def test_references_in_dict_keys_are_resolved_as_text():
    config = {
        "{{ params.user }}": 1,
        "k-{{ fetch.status }}": 2,
        "{{ fetch.status }}": 3,
        "{{ fetch.items }}": 4,
    }

    assert resolve(config, SCOPE) == {"u1": 1, "k-200": 2, "200": 3, '[{"id":1},{"id":2},{"id":3}]': 4}


def test_unresolved_dict_key_is_left_as_written():
    assert resolve({"{{ ghost.x }}": 1}, SCOPE) == {"{{ ghost.x }}": 1}


def test_strict_mode_checks_dict_keys():
    with pytest.raises(TemplateError):
        resolve({"{{ ghost.x }}": 1}, SCOPE, strict=True)


@pytest.mark.parametrize("value", [5, 1.5, True, None, "plain", "{ single }", "{{ not a path }}", "{{}}"])
def test_values_without_references_are_unchanged(value):
    assert resolve(value, SCOPE) == value
    assert list(iter_references(value)) == []


def test_iter_references_finds_every_path_in_order():
    config = {
        "a": "{{ x.one }} and {{y.two.0}}",
        "{{ k.key }}": ["{{ params.p }}", {"deep": "{{ x.three }}"}],
        "n": 3,
    }

    assert list(iter_references(config)) == ["x.one", "y.two.0", "k.key", "params.p", "x.three"]


def test_referenced_roots_are_the_first_path_segments():
    config = {"a": "{{ x.one }} {{ x.two }}", "b": ["{{ params.p }}", "{{ y }}", "{{ z-1.v }}"]}

    assert referenced_roots(config) == {"x", "params", "y", "z-1"}


def test_referenced_roots_of_a_plain_config_is_empty():
    assert referenced_roots({"a": "b", "c": [1, 2]}) == set()


# --- hostile paths and sizes -------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_a_list_index_too_long_to_be_one_is_a_template_error_not_a_crash(strict):
    """5,000 digits used to reach int() and raise ValueError (past Python's 4,300-digit limit)."""
    index = "0" * 5000

    with pytest.raises(TemplateError) as caught:
        resolve({"x": f"{{{{ fetch.items.{index} }}}}"}, SCOPE, strict=strict)

    assert caught.value.code == "invalid_template"
    assert f"more than {MAX_INDEX_DIGITS} digits" in str(caught.value)
    assert len(str(caught.value)) < 200


def test_a_list_index_with_leading_zeros_up_to_the_bound_still_resolves():
    index = "0" * (MAX_INDEX_DIGITS - 1) + "1"

    assert resolve(f"{{{{ fetch.items.{index}.id }}}}", SCOPE) == 2


def test_a_long_run_of_digits_is_still_a_dict_key_at_run_time():
    key = "9" * 50

    assert resolve(f"{{{{ params.{key} }}}}", {"params": {key: "found"}}) == "found"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("a.items.0", True),
        ("a.items.-1", True),
        ("a." + "7" * MAX_INDEX_DIGITS, True),
        ("a." + "7" * (MAX_INDEX_DIGITS + 1), False),
        ("a.-" + "7" * (MAX_INDEX_DIGITS + 1), False),
        ("a.x" + "7" * 100, True),
    ],
)
def test_check_path_refuses_only_over_long_indexes(path, ok):
    if ok:
        check_path(path)
    else:
        with pytest.raises(TemplateError):
            check_path(path)


def test_resolve_refuses_a_result_over_max_bytes():
    """100 copies of a 1,000-character param: the amplification templates allow."""
    config = {f"k{i}": "{{ params.big }}" for i in range(100)}
    scope = {"params": {"big": "x" * 1000}}

    with pytest.raises(ConfigTooLarge) as caught:
        resolve(config, scope, max_bytes=50_000)

    assert caught.value.code == "config_too_large"
    assert "50000" in str(caught.value)
    assert json_size(resolve(config, scope, max_bytes=110_000)) <= 110_000


def test_resolve_counts_interpolated_text_too():
    with pytest.raises(ConfigTooLarge):
        resolve(["{{ params.big }} and {{ params.big }}"], {"params": {"big": "y" * 600}}, max_bytes=1000)


def test_json_size_is_compact_json_bytes():
    assert json_size({"a": [1, 2], "b": "é"}) == len('{"a":[1,2],"b":"\\u00e9"}')
