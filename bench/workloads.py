"""The workflow definitions the engine runs: built-in `input`/`output` handlers, nothing sleeps."""


def node(node_id: str, handler: str = "input", dependencies: list[str] | None = None, **config) -> dict:
    return {"id": node_id, "handler": handler, "dependencies": dependencies or [], "config": config}


def two_node(index: int) -> dict:
    """input -> output, the unit of the load shape."""
    return {
        "name": f"bench-load-{index}",
        "dag": {"nodes": [node("start", i=index), node("finish", "output", ["start"])]},
    }


def fan_out_in(width: int) -> dict:
    """1 root -> `width` parallel nodes -> 1 join (an `output` node, so it gathers every result)."""
    middle = [node(f"w{i}", dependencies=["root"], i=i) for i in range(width)]
    join = node("join", "output", [n["id"] for n in middle])
    return {"name": f"bench-wide-{width}", "dag": {"nodes": [node("root"), *middle, join]}}


def chain(length: int) -> dict:
    """`length` nodes, each depending on the one before."""
    nodes = [node("n0")] + [node(f"n{i}", dependencies=[f"n{i - 1}"], i=i) for i in range(1, length)]
    return {"name": f"bench-deep-{length}", "dag": {"nodes": nodes}}


def layered(size: int) -> dict:
    """`size` nodes with about two edges each (a chain plus a binary tree), for the submit shape."""
    nodes = [node("n0")]
    for i in range(1, size):
        parents = sorted({f"n{i - 1}", f"n{(i - 1) // 2}"})
        nodes.append(node(f"n{i}", dependencies=parents, i=i))
    return {"name": f"bench-submit-{size}", "dag": {"nodes": nodes}}
