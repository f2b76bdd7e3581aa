"""Executions: the filtered list, and one execution's page (DAG, node detail, timeline, tasks)
with cancel, re-run from failure and re-trigger. Each page has an HTML fragment of its changing
part that static/dashboard/live.js fetches while work is running."""

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from workflows import rerun, selectors, services
from workflows.dag import Dag
from workflows.dag_cache import dag_for
from workflows.dashboard.access import with_visible_execution
from workflows.dashboard.formatting import pretty_json
from workflows.dashboard.forms import ExecutionFilterForm, ParamsForm
from workflows.dashboard.graph import GRAPH_MAX_NODES, graph_of
from workflows.dashboard.responses import carry_out, page_of
from workflows.dashboard.timeline import timeline_of
from workflows.models import Execution, TaskRun

PAGE_SIZE = 50
# The live fragment is sent every second: bigger executions list their first tasks only, and
# past BIG_EXECUTION tasks (a fragment of several hundred KB) it is sent less often.
TASK_TABLE_MAX = 500
BIG_EXECUTION = 200
LIVE_INTERVAL_MS, BIG_LIVE_INTERVAL_MS = 1000, 3000


@login_required
def execution_list(request):
    """Newest first; filter by status, workflow, creation date or id (prefix)."""
    return render(request, "dashboard/executions.html", _list_context(request))


@login_required
def execution_rows(request):
    """The list's table alone, for live refresh."""
    return render(request, "dashboard/_execution_rows.html", _list_context(request))


def _list_context(request) -> dict:
    form = ExecutionFilterForm(request.GET)
    executions = form.filter(
        selectors.executions_visible_to(request.user)
        .select_related("owner")
        .annotate(finished_count=F("total_tasks") - F("unfinished_tasks"))
    )
    page = page_of(request, executions, PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    workflow_id = form.cleaned_data.get("workflow")
    return {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "workflow": workflow_id
        and selectors.workflows_visible_to(request.user).filter(pk=workflow_id).first(),
        "live": any(not execution.is_terminal for execution in page),
    }


@with_visible_execution
def execution_detail(request, execution: Execution):
    """The DAG coloured by state, the selected node's detail, the timeline and every task."""
    return render(request, "dashboard/execution.html", _execution_context(request, execution))


@with_visible_execution
def execution_live(request, execution: Execution):
    """The changing part of the execution page, for live refresh."""
    return render(request, "dashboard/_execution_live.html", _execution_context(request, execution))


def _execution_context(request, execution: Execution, form: ParamsForm | None = None) -> dict:
    runs = selectors.live_task_runs(execution)
    statuses = {run.node_id: run.status for run in runs}
    dag = dag_for(execution.workflow_id)
    return {
        "execution": execution,
        "live": not execution.is_terminal,
        "live_interval": LIVE_INTERVAL_MS if len(runs) <= BIG_EXECUTION else BIG_LIVE_INTERVAL_MS,
        "graph": graph_of(execution.workflow_id, statuses),
        "graph_max_nodes": GRAPH_MAX_NODES,
        "timeline": timeline_of(
            runs, start=execution.started_at, end=execution.finished_at or timezone.now()
        ),
        "runs": runs[:TASK_TABLE_MAX],
        "run_count": len(runs),
        "segments": _segments(Counter(statuses.values()), len(runs)),
        "legend": TaskRun.Status.values,
        "selected": _node_detail(request.GET.get("node"), dag, runs),
        "children": selectors.sub_executions(execution.id) if dag.has_subworkflows else [],
        "can_rerun": execution.status in rerun.RERUNNABLE,
        # The form is part of the live fragment too; live.js keeps the one on the page.
        "retrigger_form": form or ParamsForm(initial={"params": pretty_json(execution.params)}),
    }


# The progress bar fills from the left with what is over, then what is under way.
_S = TaskRun.Status
PROGRESS_ORDER = [_S.COMPLETED, _S.SKIPPED, _S.FAILED, _S.CANCELLED, _S.RUNNING, _S.QUEUED, _S.PENDING]


def _segments(counts: Counter, total: int) -> list[dict]:
    """The progress bar: one segment per task state present, widths in percent."""
    segments, left = [], 0.0
    for status in PROGRESS_ORDER:
        if counts[status]:
            width = counts[status] / total * 100
            segments.append({"status": status, "count": counts[status], "left": left, "width": width})
            left += width
    return segments


def _node_detail(node_id: str | None, dag: Dag, runs: list[TaskRun]) -> dict | None:
    """The selected node: its run, definition, neighbours and every attempt."""
    run = next((run for run in runs if run.node_id == node_id), None)
    if run is None:
        return None
    # Failed attempts are kept as TaskAttempt rows; the run itself is the attempt under way or the
    # one that succeeded (the template reads the same fields from both).
    attempts: list = list(run.failed_attempts.all())
    if run.attempt and run.attempt not in {a.attempt for a in attempts}:
        attempts.append(run)
    return {
        "run": run,
        "node": dag.node_of(run.node_id),
        "children": dag.children.get(run.node_id, ()),
        "attempts": attempts,
    }


@require_POST
@with_visible_execution
def execution_cancel(request, execution: Execution):
    carry_out(
        request,
        lambda: services.execution_cancel(execution=execution, user=request.user),
        "Execution cancelled.",
    )
    return redirect("dashboard-execution", execution.id)


@require_POST
@with_visible_execution
def execution_rerun(request, execution: Execution):
    """Failed and cancelled nodes run again; completed outputs are kept."""
    carry_out(
        request,
        lambda: rerun.execution_rerun(execution=execution, user=request.user),
        "Re-running from the failure: the failed and cancelled nodes run again.",
    )
    return redirect("dashboard-execution", execution.id)


@require_POST
@with_visible_execution
def execution_retrigger(request, execution: Execution):
    """A new execution of the same workflow with the params typed in; the form again if refused."""
    form = ParamsForm(request.POST)
    new = form.start(
        lambda params: rerun.execution_retrigger(execution=execution, params=params, owner=request.user)
    )
    if new is None:
        context = _execution_context(request, execution, form)
        return render(request, "dashboard/execution.html", context, status=400)
    messages.success(request, f"Started a new execution of {execution.workflow.name} (re-triggered).")
    return redirect("dashboard-execution", new.id)
