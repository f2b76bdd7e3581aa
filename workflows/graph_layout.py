"""Layered (Sugiyama-style) drawing of a DAG, left to right, for the dashboard's SVG. Pure logic.

1. Layers: longest path from the roots, so every edge points to a later layer.
2. An edge spanning several layers gets a dummy point in each layer it crosses, so the ordering
   counts it and it is drawn between the nodes instead of through them.
3. Order within layers: barycentre sweeps, down and up, keeping the order with the fewest
   crossings (counted per pair of layers in O(E log V)).
4. Vertical positions: each layer in turn is pulled towards its neighbours' mean height, subject
   to its order and no overlap (an isotonic regression, solved exactly by pool-adjacent-violators).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

NODE_WIDTH = 176
NODE_HEIGHT = 44
# The slot an edge's bend point takes in a layer it crosses.
DUMMY_HEIGHT = 6
LAYER_GAP = 72
NODE_GAP = 14
MARGIN = 16
ORDER_SWEEPS = 12
PLACEMENT_SWEEPS = 6
# Long edges are pulled straight harder than nodes are pulled towards their neighbours.
DUMMY_WEIGHT = 4.0


@dataclass(frozen=True)
class Box:
    """A node's rectangle; (x, y) is its top-left corner."""

    id: str
    layer: int
    x: float
    y: float
    width: float = NODE_WIDTH
    height: float = NODE_HEIGHT

    @property
    def out_port(self) -> tuple[float, float]:
        return self.x + self.width, self.y + self.height / 2

    @property
    def in_port(self) -> tuple[float, float]:
        return self.x, self.y + self.height / 2


@dataclass(frozen=True)
class Edge:
    """A dependency drawn from `source`'s right side to `target`'s left side through `points`."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]

    @property
    def path(self) -> str:
        """SVG path data: a smooth curve with horizontal tangents at every point."""
        (x, y), *rest = self.points
        parts = [f"M{x:.1f},{y:.1f}"]
        for nx, ny in rest:
            mid = (x + nx) / 2
            parts.append(f"C{mid:.1f},{y:.1f} {mid:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
            x, y = nx, ny
        return " ".join(parts)


@dataclass(frozen=True)
class Layout:
    """Where to draw every node and edge, in a `width` by `height` canvas."""

    nodes: dict[str, Box]
    edges: tuple[Edge, ...]
    width: float
    height: float
    layers: int


@dataclass
class _Slot:
    """A node or an edge's bend point in one layer, while ordering and placing."""

    key: object  # a node id, or (edge index, layer) for a bend point
    height: float
    weight: float
    up: list["_Slot"]
    down: list["_Slot"]
    position: int = 0
    center: float = 0.0


def layout_dag(dependencies: Mapping[str, Sequence[str]]) -> Layout:
    """Lay out the DAG given as {node id: its dependencies}, in the mapping's order.

    Raises ValueError for an unknown dependency or a cycle (validated DAGs have neither)."""
    layer_of = _longest_path_layers(dependencies)
    layers, slots = _slots(dependencies, layer_of)
    _order(layers)
    _place(layers)
    return _geometry(dependencies, layer_of, layers, slots)


def _longest_path_layers(dependencies: Mapping[str, Sequence[str]]) -> dict[str, int]:
    layer_of: dict[str, int] = {}
    remaining = {node: len(set(deps)) for node, deps in dependencies.items()}
    children: dict[str, list[str]] = {node: [] for node in dependencies}
    for node, deps in dependencies.items():
        for dep in set(deps):
            if dep not in children:
                raise ValueError(f"node {node!r} depends on unknown node {dep!r}")
            children[dep].append(node)
    ready = [node for node, count in remaining.items() if count == 0]
    for node in ready:
        layer_of[node] = 0
    while ready:
        node = ready.pop()
        for child in children[node]:
            layer_of[child] = max(layer_of.get(child, 0), layer_of[node] + 1)
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    if len(layer_of) != len(dependencies):
        raise ValueError("the graph has a cycle")
    return layer_of


def _slots(dependencies, layer_of) -> tuple[list[list[_Slot]], dict[object, _Slot]]:
    """Every node and bend point as a slot in its layer, linked to its neighbours."""
    count = max(layer_of.values(), default=-1) + 1
    layers: list[list[_Slot]] = [[] for _ in range(count)]
    slots: dict[object, _Slot] = {}

    def add(key, layer: int, height: float, weight: float) -> _Slot:
        slot = _Slot(key, height, weight, [], [])
        slot.position = len(layers[layer])
        layers[layer].append(slot)
        slots[key] = slot
        return slot

    for node in dependencies:
        add(node, layer_of[node], NODE_HEIGHT, 1.0)
    for index, (source, target) in enumerate(_edges(dependencies)):
        previous = slots[source]
        for layer in range(layer_of[source] + 1, layer_of[target]):
            bend = add((index, layer), layer, DUMMY_HEIGHT, DUMMY_WEIGHT)
            previous.down.append(bend)
            bend.up.append(previous)
            previous = bend
        previous.down.append(slots[target])
        slots[target].up.append(previous)
    return layers, slots


def _edges(dependencies: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    return [(dep, node) for node, deps in dependencies.items() for dep in dict.fromkeys(deps)]


def _order(layers: list[list[_Slot]]) -> None:
    """Barycentre sweeps; the layers end in the best order seen."""
    best = [list(layer) for layer in layers]
    fewest = _crossings(layers)
    for sweep in range(ORDER_SWEEPS):
        if fewest == 0:
            break
        downwards = sweep % 2 == 0
        indexes = range(1, len(layers)) if downwards else range(len(layers) - 2, -1, -1)
        for index in indexes:
            layer = layers[index]
            layer.sort(key=lambda slot, down=downwards: _barycentre(slot.up if down else slot.down, slot))
            for position, slot in enumerate(layer):
                slot.position = position
        crossings = _crossings(layers)
        if crossings < fewest:
            fewest, best = crossings, [list(layer) for layer in layers]
    for index, layer in enumerate(best):
        layers[index] = layer
        for position, slot in enumerate(layer):
            slot.position = position


def _barycentre(neighbours: list[_Slot], slot: _Slot) -> float:
    # A slot with no neighbour on that side keeps its place.
    if not neighbours:
        return slot.position
    return sum(n.position for n in neighbours) / len(neighbours)


def _crossings(layers: list[list[_Slot]]) -> int:
    """Edge crossings between consecutive layers: inversions of the lower ends, counted with a
    Fenwick tree once the edges are sorted by their upper ends."""
    total = 0
    for upper, lower in pairwise(layers):
        ends = sorted((slot.position, child.position) for slot in upper for child in slot.down)
        tree = [0] * (len(lower) + 1)
        for seen, (_, position) in enumerate(ends):
            at_most = 0
            index = position + 1
            while index > 0:
                at_most += tree[index]
                index -= index & -index
            total += seen - at_most
            index = position + 1
            while index <= len(lower):
                tree[index] += 1
                index += index & -index
    return total


def _place(layers: list[list[_Slot]]) -> None:
    """Centres: every layer centred on the tallest first, then pulled towards its neighbours."""
    offsets = [_offsets(layer) for layer in layers]
    tallest = max((o[-1] if o else 0.0 for o in offsets), default=0.0)
    for layer, layer_offsets in zip(layers, offsets, strict=True):
        shift = (tallest - (layer_offsets[-1] if layer_offsets else 0.0)) / 2
        for slot, offset in zip(layer, layer_offsets, strict=True):
            slot.center = offset + shift
    for sweep in range(PLACEMENT_SWEEPS):
        downwards = sweep % 2 == 0
        indexes = range(1, len(layers)) if downwards else range(len(layers) - 2, -1, -1)
        for index in indexes:
            layer = layers[index]
            targets = [_mean_center(slot.up if downwards else slot.down, slot) for slot in layer]
            centres = _closest_ordered(targets, [slot.weight for slot in layer], offsets[index])
            for slot, centre in zip(layer, centres, strict=True):
                slot.center = centre


def _offsets(layer: list[_Slot]) -> list[float]:
    """The smallest centre-to-first-centre distances that keep the layer's slots apart."""
    offsets: list[float] = []
    for index, slot in enumerate(layer):
        if index == 0:
            offsets.append(0.0)
        else:
            before = layer[index - 1]
            offsets.append(offsets[-1] + (before.height + slot.height) / 2 + NODE_GAP)
    return offsets


def _mean_center(neighbours: list[_Slot], slot: _Slot) -> float:
    if not neighbours:
        return slot.center
    return sum(n.center for n in neighbours) / len(neighbours)


def _closest_ordered(targets: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Centres c minimising Σ w·(c - target)² with c[i+1] - c[i] ≥ offsets[i+1] - offsets[i].

    With z = c - offset the constraint is z non-decreasing: weighted isotonic regression."""
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for target, weight, offset in zip(targets, weights, offsets, strict=True):
        blocks.append([(target - offset) * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight_sum, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight_sum
            blocks[-1][2] += count
    centres: list[float] = []
    for total, weight_sum, count in blocks:
        level, first = total / weight_sum, len(centres)
        centres.extend(level + offset for offset in offsets[first : first + int(count)])
    return centres


def _geometry(dependencies, layer_of, layers, slots) -> Layout:
    """Pixels: layers as columns, the topmost slot MARGIN from the top."""
    top = min((slot.center - slot.height / 2 for layer in layers for slot in layer), default=0.0)
    shift = MARGIN - top

    def column(layer: int) -> float:
        return MARGIN + layer * (NODE_WIDTH + LAYER_GAP)

    boxes = {
        node: Box(
            node,
            layer_of[node],
            column(layer_of[node]),
            slots[node].center + shift - NODE_HEIGHT / 2,
        )
        for node in dependencies
    }
    edges = []
    for index, (source, target) in enumerate(_edges(dependencies)):
        points = [boxes[source].out_port]
        for layer in range(layer_of[source] + 1, layer_of[target]):
            y = slots[(index, layer)].center + shift
            points += [(column(layer), y), (column(layer) + NODE_WIDTH, y)]
        points.append(boxes[target].in_port)
        edges.append(Edge(source, target, tuple(points)))
    bottom = max((slot.center + shift + slot.height / 2 for layer in layers for slot in layer), default=0.0)
    return Layout(
        nodes=boxes,
        edges=tuple(edges),
        width=column(len(layers)) - LAYER_GAP + MARGIN if layers else 2 * MARGIN,
        height=bottom + MARGIN,
        layers=len(layers),
    )
