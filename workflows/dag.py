"""DAG validation and the compiled graph the engine walks. Pure logic, no Django.

`parse_workflow` turns a submitted payload into a `Dag` or raises `DagError` naming the node and
the problem. All checks are O(V+E) except the ancestor check for templates, which uses one
integer bitset per node (fast even at the 10,000-node limit).
"""

import functools
import re
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from resilience.rate_limit import parse_rate
from workflows import secrets, templating
from workflows.conditions import Condition, ConditionError, compile_condition

# ASCII only (`\w` would take any Unicode letter or digit), and short: ids are in every task row,
# message and status answer.
NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
WORKFLOW_KEYS = {"name", "description", "dag", "timeout_seconds", "strict_templates"}
NODE_KEYS = {"id", "handler", "dependencies", "config", "condition", "retry", "timeout_seconds", "map_over"}
# In the templates of a node with `map_over`: the item it runs for and the item's position.
ITEM, INDEX = "item", "index"
# The handler the engine runs itself, never a worker: a child execution of another workflow.
SUBWORKFLOW = "workflow"
RETRY_KEYS = {"max_attempts", "backoff_base", "backoff_max", "jitter"}


MAX_JSON_DEPTH = 64
MAX_TIMEOUT_SECONDS = 366 * 24 * 3600
# Returned in every page of the workflow list.
MAX_DESCRIPTION_LENGTH = 2000


def check_json_value(value: Any, what: str, *, depth: int = 0) -> None:
    """Reject what PostgreSQL or the engine cannot store or walk safely: nesting deeper than
    MAX_JSON_DEPTH, NUL characters and lone surrogates in strings (keys included)."""
    if depth > MAX_JSON_DEPTH:
        raise DagError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep", code="invalid_payload")
    if isinstance(value, str):
        if "\x00" in value:
            raise DagError(f"{what} contains a NUL character", code="invalid_payload")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DagError(f"{what} contains an invalid Unicode character", code="invalid_payload") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_json_value(key, what, depth=depth + 1)
            check_json_value(item, what, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, what, depth=depth + 1)


class DagError(ValueError):
    """The submitted workflow is invalid; `node` names the offending node when there is one."""

    def __init__(self, message: str, *, code: str = "invalid_dag", node: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.node = node


@dataclass(frozen=True)
class Node:
    """One node as the engine runs it."""

    id: str
    handler: str
    dependencies: tuple[str, ...]
    config: dict
    condition: Condition | None = None
    # Node ids whose outputs this node's config or condition reads (never `params`).
    references: frozenset[str] = frozenset()
    retry: dict | None = None
    timeout_seconds: float | None = None
    # No condition, no template and no map at all: the node runs with its config as written, so
    # the orchestrator can queue it in SQL without evaluating anything.
    static: bool = False
    # `map_over`: the path (`{{ path }}` as written) of the list the node runs once per item of.
    map_over: str | None = None

    def to_json(self) -> dict:
        data: dict[str, Any] = {
            "id": self.id,
            "handler": self.handler,
            "dependencies": list(self.dependencies),
            "config": self.config,
        }
        if self.condition is not None:
            data["condition"] = self.condition.source
        if self.retry is not None:
            data["retry"] = self.retry
        if self.timeout_seconds is not None:
            data["timeout_seconds"] = self.timeout_seconds
        if self.map_over is not None:
            data["map_over"] = f"{{{{ {self.map_over} }}}}"
        return data


def map_item_id(node_id: str, index: int) -> str:
    """The task id of a mapped node's item: `node[3]`. No node id contains `[`."""
    return f"{node_id}[{index}]"


def map_item_of(task_node_id: str) -> tuple[str, int] | None:
    """(node id, index) if `task_node_id` names an item of a mapped node, else None."""
    if not task_node_id.endswith("]") or "[" not in task_node_id:
        return None
    node_id, _, index = task_node_id[:-1].partition("[")
    return node_id, int(index)


@dataclass(frozen=True)
class Dag:
    """A validated workflow: nodes in submission order, children lists, roots."""

    name: str
    nodes: dict[str, Node]
    children: dict[str, tuple[str, ...]]
    roots: tuple[str, ...]
    description: str = ""
    timeout_seconds: float | None = None
    strict_templates: bool = False
    topological_order: tuple[str, ...] = field(default=(), repr=False)

    @functools.cached_property
    def has_subworkflows(self) -> bool:
        return any(node.handler == SUBWORKFLOW for node in self.nodes.values())

    def node_of(self, task_node_id: str) -> Node:
        """The node a task runs: itself, or for an item of a mapped node (`x[3]`) the node `x`."""
        item = map_item_of(task_node_id)
        return self.nodes[item[0] if item else task_node_id]

    def to_json(self) -> dict:
        """The normalised definition stored with the Workflow; `from_definition` reads it back."""
        data: dict[str, Any] = {"nodes": [node.to_json() for node in self.nodes.values()]}
        if self.strict_templates:
            data["strict_templates"] = True
        return data


@dataclass(frozen=True)
class Limits:
    """Size limits applied at submission."""

    max_nodes: int = 10_000
    max_config_bytes: int = 64 * 1024
    max_retry_attempts: int = 100


def parse_workflow(payload: Any, *, handlers: Collection[str], limits: Limits = Limits()) -> Dag:
    """Validate a submitted workflow payload (`{"name", "dag": {"nodes": [...]}, ...}`).
    `handlers`: the known names, or a mapping of each name to its config check (which raises
    ValueError naming the field; None: any config)."""
    if not isinstance(payload, Mapping):
        raise DagError("the request body must be a JSON object", code="invalid_payload")
    check_json_value(payload, "the workflow")
    unknown = set(payload) - WORKFLOW_KEYS
    if unknown:
        raise DagError(
            f"unknown field(s) {sorted(unknown)}; allowed: {sorted(WORKFLOW_KEYS)}",
            code="invalid_payload",
        )
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise DagError("'name' must be a non-empty string of at most 200 characters", code="invalid_payload")
    description = payload.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        raise DagError(
            f"'description' must be a string of at most {MAX_DESCRIPTION_LENGTH} characters",
            code="invalid_payload",
        )
    timeout = _optional_positive_number(
        payload.get("timeout_seconds"), "'timeout_seconds'", code="invalid_payload"
    )
    strict = payload.get("strict_templates", False)
    if not isinstance(strict, bool):
        raise DagError("'strict_templates' must be true or false", code="invalid_payload")
    dag = payload.get("dag")
    if not isinstance(dag, Mapping) or not isinstance(dag.get("nodes"), list):
        raise DagError("'dag' must be an object with a 'nodes' list", code="invalid_payload")
    if set(dag) - {"nodes"}:
        raise DagError(
            f"unknown field(s) in 'dag': {sorted(set(dag) - {'nodes'})}; only 'nodes' is allowed",
            code="invalid_payload",
        )
    compiled = build_dag(dag["nodes"], handlers=handlers, limits=limits, strict=strict)
    return Dag(
        name=name.strip(),
        nodes=compiled.nodes,
        children=compiled.children,
        roots=compiled.roots,
        description=description,
        timeout_seconds=timeout,
        strict_templates=strict,
        topological_order=compiled.topological_order,
    )


def from_definition(definition: Mapping, *, name: str = "") -> Dag:
    """Rebuild a Dag from its stored normalised definition (already validated at submission, maybe
    under older rules or limits: those are not applied again)."""
    return build_dag(
        definition["nodes"],
        handlers=None,
        limits=None,
        strict=bool(definition.get("strict_templates", False)),
        name=name,
    )


def build_dag(
    raw_nodes: list,
    *,
    handlers: Collection[str] | None,
    limits: Limits | None,
    strict: bool = False,
    name: str = "",
) -> Dag:
    """Check every node, then the graph (dependencies, cycles, template ancestry). `limits` None:
    a stored definition, whose nodes, sizes and template ancestry were checked when it was
    submitted; only its graph is built again (and a cycle still refused)."""
    if not raw_nodes:
        raise DagError("a workflow needs at least one node")
    if limits is not None and len(raw_nodes) > limits.max_nodes:
        raise DagError(
            f"a workflow may have at most {limits.max_nodes} nodes, got {len(raw_nodes)}",
            code="too_large",
        )
    nodes: dict[str, Node] = {}
    for position, raw in enumerate(raw_nodes):
        node = _stored_node(raw) if limits is None else _parse_node(raw, position, handlers, limits)
        if node.id in nodes:
            raise DagError(f"duplicate node id {node.id!r}", node=node.id)
        nodes[node.id] = node
    children: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for node in nodes.values():
        for dependency in node.dependencies:
            if dependency not in nodes:
                raise DagError(f"node {node.id!r} depends on unknown node {dependency!r}", node=node.id)
            children[dependency].append(node.id)
    order = _topological_order(nodes, children)
    if limits is not None:
        _check_references(nodes, order)
    return Dag(
        name=name,
        nodes=nodes,
        children={node_id: tuple(kids) for node_id, kids in children.items()},
        roots=tuple(node_id for node_id, node in nodes.items() if not node.dependencies),
        strict_templates=strict,
        topological_order=order,
    )


def _parse_node(raw: Any, position: int, handlers: Collection[str] | None, limits: Limits) -> Node:
    if not isinstance(raw, Mapping):
        raise DagError(f"node #{position} must be an object")
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
        raise DagError(
            f"node #{position} needs an 'id': ASCII letters, digits, '_' or '-', starting with a letter"
            f" or '_', at most 64 characters (got {_shown(node_id)})"
        )
    if node_id == templating.PARAMS:
        raise DagError("'params' is reserved for trigger parameters", node=node_id)
    if node_id == templating.SECRETS:
        raise DagError("'secrets' is reserved for {{ secrets.NAME }} references", node=node_id)
    unknown = set(raw) - NODE_KEYS
    if unknown:
        raise DagError(
            f"node {node_id!r} has unknown field(s) {sorted(unknown)}; allowed: {sorted(NODE_KEYS)}",
            node=node_id,
        )
    handler = raw.get("handler")
    if not isinstance(handler, str) or not handler:
        raise DagError(f"node {node_id!r} needs a 'handler' string", node=node_id)
    if handlers is not None and handler not in handlers:
        raise DagError(
            f"node {node_id!r} uses unknown handler {handler!r}; known: {sorted(handlers)}",
            code="unknown_handler",
            node=node_id,
        )
    dependencies = raw.get("dependencies", [])
    if dependencies is None:
        dependencies = []
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise DagError(f"node {node_id!r}: 'dependencies' must be a list of node ids", node=node_id)
    if node_id in dependencies:
        raise DagError(f"node {node_id!r} depends on itself", code="cycle", node=node_id)
    if len(set(dependencies)) != len(dependencies):
        raise DagError(f"node {node_id!r} lists a dependency twice", node=node_id)
    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise DagError(f"node {node_id!r}: 'config' must be an object", node=node_id)
    size = templating.json_size(config)
    if size > limits.max_config_bytes:
        raise DagError(
            f"node {node_id!r}: config is {size} bytes, the limit is {limits.max_config_bytes}",
            code="too_large",
            node=node_id,
        )
    check = handlers.get(handler) if isinstance(handlers, Mapping) else None
    if check is not None:
        try:
            check(config)
        except ValueError as exc:
            raise DagError(f"node {node_id!r}: {exc}", code="invalid_config", node=node_id) from None
    condition = None
    if raw.get("condition") is not None:
        try:
            condition = compile_condition(raw["condition"])
        except ConditionError as exc:
            raise DagError(f"node {node_id!r}: {exc}", code="invalid_condition", node=node_id) from None
    if config.get("rate_limit") is not None:
        try:
            limit, _ = parse_rate(config["rate_limit"])
        except ValueError as exc:
            raise DagError(f"node {node_id!r}: {exc}", node=node_id) from None
        if limit == 0:
            raise DagError(
                f"node {node_id!r}: rate_limit {config['rate_limit']!r} allows no call; a node's "
                "rate_limit can only tighten the operator's RATE_LIMITS (the stricter applies)",
                node=node_id,
            )
    map_over = _parse_map_over(raw.get("map_over"), node_id)
    paths = set(templating.iter_references(config))
    _check_paths(paths | ({map_over} if map_over else set()), condition, node_id)
    _check_secret_references(config, condition, node_id)
    references, static = _derived(handler, paths, condition, map_over)
    return Node(
        id=node_id,
        handler=handler,
        dependencies=tuple(dependencies),
        config=dict(config),
        condition=condition,
        references=references,
        static=static,
        retry=_parse_retry(raw.get("retry"), node_id, limits),
        timeout_seconds=_optional_positive_number(
            raw.get("timeout_seconds"), f"node {node_id!r}: 'timeout_seconds'", node=node_id
        ),
        map_over=map_over,
    )


def _stored_node(raw: Mapping) -> Node:
    """A node of a stored definition (`Node.to_json`'s form), checked when it was submitted, maybe
    under older rules or limits that are not applied again: only what the engine derives from it
    is worked out. Every process compiles each definition it runs, 50,000 nodes included."""
    node_id, handler = raw["id"], raw["handler"]
    config = raw.get("config") or {}
    condition = None if raw.get("condition") is None else compile_condition(raw["condition"])
    map_over = _parse_map_over(raw.get("map_over"), node_id)
    references, static = _derived(handler, set(templating.iter_references(config)), condition, map_over)
    retry = raw.get("retry")
    return Node(
        id=node_id,
        handler=handler,
        dependencies=tuple(raw.get("dependencies") or ()),
        config=config,
        condition=condition,
        references=references,
        static=static,
        retry=None if retry is None else dict(retry),
        timeout_seconds=raw.get("timeout_seconds"),
        map_over=map_over,
    )


def _derived(
    handler: str, paths: set[str], condition: Condition | None, map_over: str | None
) -> tuple[frozenset[str], bool]:
    """(the node ids the node reads, whether it is static) from its template paths."""
    # Secrets are the worker's to reveal: they neither make a node dynamic nor name an ancestor.
    references = {path.split(".", 1)[0] for path in paths} - {templating.SECRETS}
    if map_over is not None:  # the item and its index are not nodes
        references = (references - {ITEM, INDEX}) | {map_over.split(".", 1)[0]}
    static = condition is None and not references and map_over is None and handler != SUBWORKFLOW
    if condition is not None:
        references |= condition.references
    references.discard(templating.PARAMS)
    return frozenset(references), static


def _parse_map_over(raw: Any, node_id: str) -> str | None:
    """`map_over` is one template naming a list, `{{ upstream.items }}` or `{{ params.items }}`:
    returns its path."""
    if raw is None:
        return None
    whole = templating.EXPRESSION.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if whole is None or whole.group(1).split(".", 1)[0] in {templating.SECRETS, ITEM, INDEX}:
        raise DagError(
            f"node {node_id!r}: 'map_over' must be one template naming a list of an ancestor's output "
            f"or of the params, as {{{{ fetch.items }}}} or {{{{ params.items }}}} (got {_shown(raw)})",
            code="invalid_map_over",
            node=node_id,
        )
    return whole.group(1)


def _check_paths(paths: set[str], condition: Condition | None, node_id: str) -> None:
    """Every path the node's templates and condition follow must be one a lookup can follow."""
    if condition is not None:
        paths = paths | set(templating.iter_references(condition.source))
    for path in paths:
        try:
            templating.check_path(path)
        except templating.TemplateError as exc:
            raise DagError(f"node {node_id!r}: {exc}", code="invalid_template", node=node_id) from None


def _check_secret_references(config: Mapping, condition: Condition | None, node_id: str) -> None:
    """`{{ secrets.NAME }}` names one secret, and only in a config: a condition is evaluated by
    the orchestrator, which never sees secrets."""
    if condition is not None and templating.SECRETS in condition.references:
        raise DagError(
            f"node {node_id!r}: a condition cannot read secrets", code="invalid_condition", node=node_id
        )
    for path in templating.iter_references(config):
        root, _, name = path.partition(".")
        if root == templating.SECRETS and not secrets.NAME.fullmatch(name):
            raise DagError(
                f"node {node_id!r}: {{{{ {path} }}}} must name one secret, as {{{{ secrets.NAME }}}}",
                code="invalid_template",
                node=node_id,
            )


def _parse_retry(raw: Any, node_id: str, limits: Limits) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - RETRY_KEYS:
        raise DagError(
            f"node {node_id!r}: 'retry' must be an object with keys from {sorted(RETRY_KEYS)}",
            node=node_id,
        )
    attempts = raw.get("max_attempts", 1)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise DagError(f"node {node_id!r}: retry.max_attempts must be an integer >= 1", node=node_id)
    if attempts > limits.max_retry_attempts:
        raise DagError(
            f"node {node_id!r}: retry.max_attempts is {attempts}, the limit is {limits.max_retry_attempts}",
            code="too_large",
            node=node_id,
        )
    for key in ("backoff_base", "backoff_max", "jitter"):
        if key in raw:
            value = raw[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= MAX_TIMEOUT_SECONDS
            ):
                raise DagError(
                    f"node {node_id!r}: retry.{key} must be a number from 0 to {MAX_TIMEOUT_SECONDS}",
                    node=node_id,
                )
    return dict(raw)


def _shown(value: Any) -> str:
    """`value` for an error message, cut short: it may be anything the client sent."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]}"


def _optional_positive_number(
    value: Any, what: str, *, node: str | None = None, code: str = "invalid_dag"
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise DagError(
            f"{what} must be a positive number of seconds, at most {MAX_TIMEOUT_SECONDS}",
            node=node,
            code=code,
        )
    return value


def _topological_order(nodes: Mapping[str, Node], children: Mapping[str, list[str]]) -> tuple[str, ...]:
    """Kahn's algorithm; on a cycle, raise naming the nodes on it."""
    indegree = {node_id: len(node.dependencies) for node_id, node in nodes.items()}
    ready = deque(node_id for node_id, degree in indegree.items() if degree == 0)
    order = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for child in children[node_id]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(nodes):
        cycle = _find_cycle(nodes, {node_id for node_id, degree in indegree.items() if degree > 0})
        raise DagError(f"cycle detected: {' -> '.join(cycle)}", code="cycle", node=cycle[0])
    return tuple(order)


def _find_cycle(nodes: Mapping[str, Node], stuck: set[str]) -> list[str]:
    """Walk dependencies inside the unsorted remainder until a node repeats: that loop is a cycle."""
    current = min(stuck)
    seen: dict[str, int] = {}
    path: list[str] = []
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = next(d for d in nodes[current].dependencies if d in stuck)
    loop = path[seen[current] :]
    loop.reverse()  # dependencies point backwards; print in execution order
    start = loop.index(min(loop))  # a stable starting point, whatever node the walk began at
    loop = loop[start:] + loop[:start]
    return [*loop, loop[0]]


def _check_references(nodes: Mapping[str, Node], order: tuple[str, ...]) -> None:
    """Templates and conditions may only read ancestors (or `params`)."""
    if not any(node.references for node in nodes.values()):
        return
    bit = {node_id: 1 << index for index, node_id in enumerate(order)}
    ancestors: dict[str, int] = {}
    for node_id in order:
        mask = 0
        for dependency in nodes[node_id].dependencies:
            mask |= ancestors[dependency] | bit[dependency]
        ancestors[node_id] = mask
    for node_id in order:
        for referenced in sorted(nodes[node_id].references):
            if referenced not in nodes:
                raise DagError(
                    f"node {node_id!r} references unknown node {referenced!r} in a template or condition",
                    code="invalid_template",
                    node=node_id,
                )
            if not ancestors[node_id] & bit[referenced]:
                raise DagError(
                    f"node {node_id!r} references {referenced!r}, which is not one of its ancestors",
                    code="invalid_template",
                    node=node_id,
                )
