"""Server-rendered dashboard: executions with live status, one execution's DAG and tasks, the
dead-letter queue. Thin views over the same selectors and services as the API."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dlq import services as dlq_services
from dlq.models import DeadLetter
from workflows import selectors, services
from workflows.models import Execution
from workflows.runs import dag_for

PAGE_SIZE = 100


@login_required
def execution_list(request):
    """Newest executions first, filterable by status; the page refreshes itself."""
    return _status_page(
        request,
        "dashboard/executions.html",
        "executions",
        selectors.executions_visible_to(request.user),
        Execution.Status.values,
    )


@login_required
def execution_detail(request, execution_id):
    """The DAG in columns by depth, coloured by state, and every task's attempts and timings."""
    execution = _visible(request, execution_id)
    runs = {run.node_id: run for run in selectors.task_runs_of(execution)}
    dag = dag_for(execution.workflow_id)
    depth: dict[str, int] = {}
    for node_id in dag.topological_order:
        depth[node_id] = max((depth[d] + 1 for d in dag.nodes[node_id].dependencies), default=0)
    columns = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node_id in dag.topological_order:
        columns[depth[node_id]].append(runs[node_id])
    return render(
        request,
        "dashboard/execution.html",
        {"execution": execution, "columns": columns, "runs": list(runs.values()), "dag": dag},
    )


@login_required
@require_POST
def execution_cancel(request, execution_id):
    try:
        services.execution_cancel(execution=_visible(request, execution_id))
        messages.success(request, "Execution cancelled.")
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("dashboard-execution", args=[execution_id]))


@staff_member_required
def dead_letter_list(request):
    """Open dead letters first; retry or discard each."""
    return _status_page(
        request,
        "dashboard/dlq.html",
        "letters",
        DeadLetter.objects.select_related("resolved_by"),
        DeadLetter.Status.values,
        default=DeadLetter.Status.OPEN,
    )


@staff_member_required
@require_POST
def dead_letter_resolve(request, dead_letter_id, action):
    service = {"retry": dlq_services.dead_letter_retry, "discard": dlq_services.dead_letter_discard}.get(
        action
    )
    if service is None:
        raise Http404("unknown action")
    try:
        service(dead_letter_id=dead_letter_id, user=request.user, note=request.POST.get("note", "")[:2000])
        messages.success(request, f"Dead letter #{dead_letter_id}: {action} done.")
    except services.ServiceError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("dashboard-dlq"))


def _visible(request, execution_id) -> Execution:
    execution = selectors.execution_for(request.user, execution_id)
    if execution is None:
        raise Http404("no such execution")
    return execution


def _status_page(request, template: str, name: str, rows, statuses: list[str], default: str = ""):
    """One page of `rows` as `name`, narrowed by ?status= when it is one of `statuses`."""
    status = request.GET.get("status", default).upper()
    if status in statuses:
        rows = rows.filter(status=status)
    return render(request, template, {name: rows[:PAGE_SIZE], "statuses": statuses, "status": status})
