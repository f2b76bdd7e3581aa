"""Mapped nodes (`map_over`): dynamic fan-out. When a mapped node is ready, the list it names is
resolved and the node runs once per item: each item is a task of its own (`node[3]`), with its
own attempts, retries, timeout and dead letter, and its config resolved with `{{ item }}` and
`{{ index }}`. The node itself waits RUNNING while its count of items left drops with each
item's completion (O(1) per item, like any task); when none is left it is COMPLETED with the
list of its items' outputs, in order, and releases its children."""

import uuid
from collections import Counter
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from workflows import statements
from workflows.dag import INDEX, ITEM, map_item_id, map_item_of
from workflows.dispatch import task_message
from workflows.failures import fail_before_dispatch
from workflows.messages import TaskMessage
from workflows.models import TaskRun
from workflows.runs import Run
from workflows.templating import MISSING, TemplateError, lookup, resolve


class MapError(TemplateError):
    """The node's `map_over` does not name a list it can run, or names one too long; permanent."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def expand(
    ready: list[tuple[Run, str, int]], now: datetime
) -> tuple[list[TaskMessage], list[tuple[Run, str]]]:
    """Start ready mapped nodes (run, node id, task id): create and queue their items. Returns
    the items' messages and the nodes completed at once (an empty list: output [])."""
    completed, items, started, configs = [], [], [], []
    for run, node_id, pk in ready:
        node = run.dag.nodes[node_id]
        scope = run.scope()
        try:
            values = _items(node.map_over, scope)
            resolved = [
                resolve(
                    node.config,
                    {**scope, ITEM: value, INDEX: index},
                    strict=run.dag.strict_templates,
                    max_bytes=settings.RENDERED_CONFIG_MAX_BYTES,
                )
                for index, value in enumerate(values)
            ]
        except TemplateError as exc:
            fail_before_dispatch(run, node_id, pk, exc)
            continue
        if not values:
            completed.append((run, node_id, pk, []))
            continue
        started.append((pk, len(values), None, now))
        run.items_added(len(values))
        for index, config in enumerate(resolved):
            item_id = map_item_id(node_id, index)
            items.append((run.id, item_id, node.handler, TaskRun.Status.QUEUED, 1, 0, 0, "", config, now))
            configs.append((run, item_id, config))
    statements.start_engine_run(started)
    ids = statements.insert_map_items(items)
    messages = [
        task_message(run, item_id, ids[(str(run.id), item_id)], 1, config) for run, item_id, config in configs
    ]
    return messages, _complete(completed, now)


def _items(path: str, scope: dict) -> list:
    values = lookup(path, scope)
    if values is MISSING or not isinstance(values, list):
        shown = "nothing" if values is MISSING else f"a {type(values).__name__}"
        raise MapError(f"map_over {{{{ {path} }}}} must be a list, got {shown}", code="invalid_map_over")
    if len(values) > settings.MAP_MAX_ITEMS:
        raise MapError(
            f"map_over {{{{ {path} }}}} has {len(values)} items, more than MAP_MAX_ITEMS ({settings.MAP_MAX_ITEMS})",
            code="map_too_wide",
        )
    return values


def items_done(done: list[tuple[Run, str]], now: datetime) -> list[tuple[Run, str]]:
    """Items (run, item id) that finished in this transaction: their nodes' counts of items left
    drop; the nodes with none left are COMPLETED with their items' outputs. Returns those."""
    counts: Counter = Counter()
    runs: dict[str, Run] = {}
    for run, item_id in done:
        runs[str(run.id)] = run
        counts[(str(run.id), map_item_of(item_id)[0])] += 1
    finished = statements.map_items_done(
        [(execution_id, node_id, n) for (execution_id, node_id), n in counts.items()]
    )
    ended = [
        (runs[str(uuid.UUID(str(execution_id)))], node_id, pk)
        for pk, execution_id, node_id, last in finished
        if last
    ]
    if not ended:
        return []
    wanted = Q()
    for run, node_id, _ in ended:
        wanted |= Q(execution_id=run.id, node_id__startswith=f"{node_id}[")
    outputs: dict[tuple[str, str], list] = {}
    for execution_id, item_id, output in TaskRun.objects.filter(wanted).values_list(
        "execution_id", "node_id", "output"
    ):
        node_id, index = map_item_of(item_id)
        outputs.setdefault((str(execution_id), node_id), []).append((index, output))
    return _complete(
        [
            (run, node_id, pk, [output for _, output in sorted(outputs.get((str(run.id), node_id), []))])
            for run, node_id, pk in ended
        ],
        now,
    )


def _complete(completed: list[tuple[Run, str, int, list]], now: datetime) -> list[tuple[Run, str]]:
    statements.complete_maps([(pk, output, now) for _, _, pk, output in completed])
    for run, node_id, _, output in completed:
        run.node_succeeded(node_id, output)
    return [(run, node_id) for run, node_id, _, _ in completed]


def resume(run: Run) -> None:
    """A re-run or a dead-letter retry: each mapped node that has items waits again, RUNNING, for
    those not COMPLETED (its completed items keep their outputs; the others run again)."""
    mapped = [node_id for node_id, node in run.dag.nodes.items() if node.map_over is not None]
    for node_id in mapped:
        items = TaskRun.objects.filter(execution_id=run.id, node_id__startswith=f"{node_id}[")
        if items.exists():
            left = items.exclude(status=TaskRun.Status.COMPLETED).count()
            TaskRun.objects.filter(
                execution_id=run.id, node_id=node_id, status=TaskRun.Status.PENDING
            ).update(status=TaskRun.Status.RUNNING, pending_dependencies=left, finished_at=None)
