"""The dead-letter queue for operators: filter, read the error, retry or discard."""

from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dlq.models import DeadLetter
from workflows import triage
from workflows.dashboard.access import permission_required
from workflows.dashboard.responses import carry_out, page_of
from workflows.permissions import TRIAGE_DEAD_LETTERS, VIEW_DEAD_LETTERS

PAGE_SIZE = 50
ACTIONS = {"retry": triage.dead_letter_retry, "discard": triage.dead_letter_discard}


@permission_required(VIEW_DEAD_LETTERS)
def dead_letter_list(request):
    """Open letters by default; ?status= (or ALL), ?handler=, ?category=."""
    status = request.GET.get("status", DeadLetter.Status.OPEN).upper()
    handler, category = request.GET.get("handler", ""), request.GET.get("category", "")
    letters = DeadLetter.objects.select_related("task_run", "resolved_by", "execution__workflow")
    if status in DeadLetter.Status.values:
        letters = letters.filter(status=status)
    if handler:
        letters = letters.filter(handler=handler)
    if category:
        letters = letters.filter(category=category)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/dlq.html",
        {
            "page": page_of(request, letters, PAGE_SIZE),
            "statuses": DeadLetter.Status.values,
            "status": status,
            "handler": handler,
            "category": category,
            "query": query.urlencode(),
        },
    )


@require_POST
@permission_required(TRIAGE_DEAD_LETTERS)
def dead_letter_resolve(request, dead_letter_id: int, action: str):
    service = ACTIONS.get(action)
    if service is None:
        raise Http404("unknown action")
    note = request.POST.get("note", "")[:2000]
    carry_out(
        request,
        lambda: service(dead_letter_id=dead_letter_id, user=request.user, note=note),
        f"Dead letter #{dead_letter_id}: {action} done.",
    )
    # Back to the list as it was filtered: only a query string, so never another site.
    back = QueryDict(request.POST.get("query", "")).urlencode()
    return redirect(f"{reverse('dashboard-dlq')}?{back}" if back else "dashboard-dlq")
