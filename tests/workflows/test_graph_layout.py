"""The dashboard's DAG drawing: layers, edges, no overlaps, sizes for big shapes. Pure logic."""

import time
from itertools import pairwise

import pytest

from tests import reference_payloads
from workflows import graph_layout
from workflows.graph_layout import LAYER_GAP, NODE_GAP, NODE_HEIGHT, NODE_WIDTH, layout_dag


def dependencies_of(payload: dict) -> dict[str, list[str]]:
    return {node["id"]: node.get("dependencies", []) for node in payload["dag"]["nodes"]}


def wide(width: int) -> dict[str, list[str]]:
    middle = {f"m{i}": ["start"] for i in range(width)}
    return {"start": [], **middle, "end": list(middle)}


def chain(length: int) -> dict[str, list[str]]:
    return {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(length)}


def assert_no_overlaps(layout) -> None:
    boxes = sorted(layout.nodes.values(), key=lambda b: (b.x, b.y))
    for before, after in pairwise(boxes):
        if before.x == after.x:
            assert after.y >= before.y + before.height + NODE_GAP - 1e-6, (before, after)
        else:
            assert after.x >= before.x + before.width + LAYER_GAP - 1e-6
    for box in boxes:
        assert box.x >= 0 and box.x + box.width <= layout.width
        assert box.y >= 0 and box.y + box.height <= layout.height + 1e-6


def assert_edges_join_their_nodes(layout, dependencies) -> None:
    expected = {(dep, node) for node, deps in dependencies.items() for dep in deps}
    assert {(e.source, e.target) for e in layout.edges} == expected
    for edge in layout.edges:
        source, target = layout.nodes[edge.source], layout.nodes[edge.target]
        assert edge.points[0] == (source.x + source.width, source.y + source.height / 2)
        assert edge.points[-1] == (target.x, target.y + target.height / 2)
        xs = [x for x, _ in edge.points]
        assert xs == sorted(xs)  # left to right, never back
        assert edge.path.startswith(f"M{edge.points[0][0]:.1f},{edge.points[0][1]:.1f}")


def crossings(layout) -> int:
    """Pairs of edges whose ends are in opposite vertical order (they must cross)."""
    ends = [(e.points[0][1], e.points[-1][1]) for e in layout.edges]
    return sum(
        1
        for i, (a_from, a_to) in enumerate(ends)
        for b_from, b_to in ends[i + 1 :]
        if (a_from - b_from) * (a_to - b_to) < 0
    )


def test_a_single_node_is_one_box_in_the_corner():
    layout = layout_dag({"only": []})

    (box,) = layout.nodes.values()
    assert (box.x, box.y, box.layer) == (graph_layout.MARGIN, graph_layout.MARGIN, 0)
    assert layout.edges == ()
    assert layout.width == NODE_WIDTH + 2 * graph_layout.MARGIN
    assert layout.height == NODE_HEIGHT + 2 * graph_layout.MARGIN


def test_an_empty_graph_has_nothing_to_draw():
    layout = layout_dag({})

    assert layout.nodes == {} and layout.edges == () and layout.layers == 0


@pytest.mark.parametrize("name", reference_payloads.NAMES)
def test_every_node_is_in_a_layer_after_its_dependencies(name):
    dependencies = dependencies_of(reference_payloads.load(name))

    layout = layout_dag(dependencies)

    for node, deps in dependencies.items():
        for dep in deps:
            assert layout.nodes[dep].layer < layout.nodes[node].layer
            assert layout.nodes[dep].x < layout.nodes[node].x
        # Longest path: one layer after the deepest dependency, roots first.
        assert layout.nodes[node].layer == max((layout.nodes[d].layer + 1 for d in deps), default=0)
    assert_no_overlaps(layout)
    assert_edges_join_their_nodes(layout, dependencies)


def test_the_complex_reference_dag_has_both_edges_into_match_products():
    dependencies = dependencies_of(reference_payloads.load("complex_dag"))

    layout = layout_dag(dependencies)

    into_match = {e.source for e in layout.edges if e.target == "match_products"}
    assert into_match == {"fetch_products", "fetch_users"}
    assert layout.layers == 5


def test_a_long_edge_bends_through_the_layers_it_crosses_without_touching_their_nodes():
    dependencies = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]}

    layout = layout_dag(dependencies)

    (long_edge,) = [e for e in layout.edges if (e.source, e.target) == ("a", "d")]
    assert len(long_edge.points) == 2 + 2 * 2  # a bend point entering and leaving layers 1 and 2
    for x, y in long_edge.points[1:-1]:
        for box in layout.nodes.values():
            inside = box.x < x < box.x + box.width and box.y <= y <= box.y + box.height
            assert not inside, (x, y, box)


def test_barycentre_ordering_untangles_crossed_pairs():
    # Submitted crossed: a's child is listed second, b's first.
    dependencies = {"a": [], "b": [], "child_of_b": ["b"], "child_of_a": ["a"]}

    layout = layout_dag(dependencies)

    assert crossings(layout) == 0
    a, b = layout.nodes["a"], layout.nodes["b"]
    child_a, child_b = layout.nodes["child_of_a"], layout.nodes["child_of_b"]
    assert (a.y < b.y) == (child_a.y < child_b.y)


def test_a_parent_is_centred_on_its_children():
    layout = layout_dag({"root": [], "x": ["root"], "y": ["root"], "z": ["root"]})

    root, middle = layout.nodes["root"], layout.nodes["y"]
    assert root.y == pytest.approx(middle.y)


def test_wide_500_fits_in_three_columns_and_is_quick():
    dependencies = wide(500)

    began = time.perf_counter()
    layout = layout_dag(dependencies)
    elapsed = time.perf_counter() - began

    assert elapsed < 2.0
    assert layout.layers == 3
    assert layout.width == 3 * NODE_WIDTH + 2 * LAYER_GAP + 2 * graph_layout.MARGIN
    assert layout.height <= 500 * (NODE_HEIGHT + NODE_GAP) + 2 * graph_layout.MARGIN
    assert_no_overlaps(layout)
    assert_edges_join_their_nodes(layout, dependencies)
    start, end = layout.nodes["start"], layout.nodes["end"]
    assert abs(start.y - end.y) < 1  # both centred on the 500


def test_deep_100_is_one_straight_row():
    dependencies = chain(100)

    layout = layout_dag(dependencies)

    assert layout.layers == 100
    assert {box.y for box in layout.nodes.values()} == {graph_layout.MARGIN}
    assert layout.height == NODE_HEIGHT + 2 * graph_layout.MARGIN
    assert layout.width == 100 * NODE_WIDTH + 99 * LAYER_GAP + 2 * graph_layout.MARGIN
    assert_edges_join_their_nodes(layout, dependencies)


def test_duplicate_dependencies_draw_one_edge():
    layout = layout_dag({"a": [], "b": ["a", "a"]})

    assert [(e.source, e.target) for e in layout.edges] == [("a", "b")]


@pytest.mark.parametrize(
    ("dependencies", "message"),
    [({"a": ["ghost"]}, "unknown node 'ghost'"), ({"a": ["b"], "b": ["a"]}, "cycle")],
)
def test_an_invalid_graph_is_refused(dependencies, message):
    with pytest.raises(ValueError, match=message):
        layout_dag(dependencies)
