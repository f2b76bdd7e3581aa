"""Who may open what: the dashboard's login for everyone, staff-only pages, visible executions."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from workflows import selectors
from workflows.dashboard.responses import not_found


def staff_required(view: Callable) -> Callable:
    """Logged in (else the dashboard's login page) and staff; others get a page saying so rather
    than the admin's login, which they could not pass."""

    @login_required
    @wraps(view)
    def staff_only(request, *args, **kwargs):
        if not request.user.is_staff:
            return render(request, "dashboard/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return staff_only


def with_visible_execution(view: Callable) -> Callable:
    """Logged in, and the URL's execution is one the user may see: the view gets it as its second
    argument. Otherwise a 404 page: someone else's execution does not exist for you."""

    @login_required
    @wraps(view)
    def visible_only(request, execution_id, *args, **kwargs):
        execution = selectors.execution_for(request.user, execution_id)
        if execution is None:
            return not_found(request, f"There is no execution {execution_id} that you can see.")
        return view(request, execution, *args, **kwargs)

    return visible_only
