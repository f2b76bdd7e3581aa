"""Workflow payloads for the fault tests, built from `fault_effect` nodes."""


def node(node_id: str, *dependencies: str, handler: str = "fault_effect", **fields) -> dict:
    """One node; `config`, `retry` and `timeout_seconds` go in as keyword arguments."""
    return {
        "id": node_id,
        "handler": handler,
        "dependencies": list(dependencies),
        "config": fields.pop("config", {}),
        **fields,
    }


def workflow(name: str, *nodes: dict, **fields) -> dict:
    return {"name": name, "dag": {"nodes": list(nodes)}, **fields}


def chain(name: str, length: int, *, seconds: float = 0.0) -> dict:
    """step_0 -> step_1 -> ... each doing one effect after `seconds`."""
    steps = [f"step_{i}" for i in range(length)]
    return workflow(
        name,
        *(node(step, *steps[i - 1 : i], config={"seconds": seconds}) for i, step in enumerate(steps)),
    )


def fan_out(name: str, width: int, *, seconds: float = 0.0) -> dict:
    """root -> width branches -> width leaves (one per branch) -> join: 2 * width + 2 effects."""
    branches = [f"branch_{i:02d}" for i in range(width)]
    leaves = [f"leaf_{i:02d}" for i in range(width)]
    return workflow(
        name,
        node("root"),
        *(node(branch, "root", config={"seconds": seconds}) for branch in branches),
        *(
            node(leaf, branch, config={"seconds": seconds})
            for leaf, branch in zip(leaves, branches, strict=True)
        ),
        node("join", *leaves),
    )
