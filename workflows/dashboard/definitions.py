"""Workflows: the definitions a user may see with how their runs went, one definition's page, and
triggering a new run with JSON params."""

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workflows import reports, selectors, services
from workflows.dashboard.formatting import pretty_json
from workflows.dashboard.forms import ParamsForm
from workflows.dashboard.graph import GRAPH_MAX_NODES, graph_of
from workflows.dashboard.responses import not_found, page_of

PAGE_SIZE = 25
RECENT_EXECUTIONS = 10


@login_required
def workflow_list(request):
    """Newest definitions first, searchable by name, each with a trigger form."""
    search = request.GET.get("q", "").strip()
    summaries = reports.workflow_summaries(request.user).select_related("owner")
    if search:
        summaries = summaries.filter(name__icontains=search)
    return render(
        request,
        "dashboard/workflows.html",
        {
            "page": page_of(request, summaries, PAGE_SIZE),
            "search": search,
            "query": urlencode({"q": search}) if search else "",
        },
    )


@login_required
def workflow_detail(request, workflow_id: uuid.UUID):
    """The definition drawn and as JSON, its recent executions, and the trigger form."""
    return _workflow_page(request, workflow_id, ParamsForm())


@login_required
@require_POST
def workflow_trigger(request, workflow_id: uuid.UUID):
    """Start a new execution with the params typed in and open it; the form again if refused."""
    workflow = selectors.workflows_visible_to(request.user).filter(pk=workflow_id).first()
    if workflow is None:
        return not_found(request, f"There is no workflow {workflow_id} that you can see.")
    form = ParamsForm(request.POST)
    execution = form.start(
        lambda params: services.workflow_start(workflow=workflow, params=params, owner=request.user)
    )
    if execution is None:
        return _workflow_page(request, workflow_id, form, status=400)
    messages.success(request, f"Started a new execution of {workflow.name}.")
    return redirect("dashboard-execution", execution.id)


def _workflow_page(request, workflow_id: uuid.UUID, form: ParamsForm, status: int = 200):
    workflow = reports.workflow_summaries(request.user).filter(pk=workflow_id).first()
    if workflow is None:
        return not_found(request, f"There is no workflow {workflow_id} that you can see.")
    recent = selectors.executions_visible_to(request.user).filter(workflow=workflow)[:RECENT_EXECUTIONS]
    context = {
        "workflow": workflow,
        "graph": graph_of(workflow.id, {}),
        "graph_max_nodes": GRAPH_MAX_NODES,
        "definition": pretty_json(workflow.dag),
        "executions": recent,
        "form": form,
    }
    return render(request, "dashboard/workflow.html", context, status=status)
