"""The DAG as the dashboard draws it: a workflow's layout (computed once per process) with every
node's state, for templates/dashboard/_graph.html."""

import uuid
from dataclasses import dataclass
from functools import lru_cache

from workflows.dag_cache import dag_for
from workflows.graph_layout import Box, Layout, layout_dag
from workflows.models import TaskRun

# Above this the SVG would be too big to be useful; the page says so and keeps the task table.
GRAPH_MAX_NODES = 1000
# Edges leaving a node in one of these states have done their part.
EDGE_DONE = {TaskRun.Status.COMPLETED: "done", TaskRun.Status.SKIPPED: "skipped"}


@dataclass(frozen=True)
class DrawnNode:
    box: Box
    handler: str
    status: str


@dataclass(frozen=True)
class DrawnEdge:
    source: str
    target: str
    path: str
    state: str


@dataclass(frozen=True)
class Graph:
    width: float
    height: float
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]


@lru_cache(maxsize=128)
def workflow_layout(workflow_id: uuid.UUID) -> Layout | None:
    """Definitions never change, so neither do their layouts; None for DAGs too big to draw."""
    dag = dag_for(workflow_id)
    if len(dag.nodes) > GRAPH_MAX_NODES:
        return None
    return layout_dag({node.id: node.dependencies for node in dag.nodes.values()})


def graph_of(workflow_id: uuid.UUID, statuses: dict[str, str]) -> Graph | None:
    """The workflow's drawing with each node in its state (`statuses`; missing ones PENDING)."""
    layout = workflow_layout(workflow_id)
    if layout is None:
        return None
    dag = dag_for(workflow_id)
    pending = TaskRun.Status.PENDING
    return Graph(
        width=layout.width,
        height=layout.height,
        nodes=[
            DrawnNode(box, dag.nodes[node_id].handler, statuses.get(node_id, pending))
            for node_id, box in layout.nodes.items()
        ],
        edges=[
            DrawnEdge(edge.source, edge.target, edge.path, EDGE_DONE.get(statuses.get(edge.source), ""))
            for edge in layout.edges
        ],
    )
