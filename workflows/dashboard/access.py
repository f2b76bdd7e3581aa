"""Who may open what: the dashboard's login for everyone, pages that take a permission, visible
executions (workflows/permissions.py has the rules)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required

from workflows import selectors, services
from workflows.dashboard.responses import not_found


def permission_required(permission: str) -> Callable[[Callable], Callable]:
    """Logged in (else the dashboard's login page) and holding `permission`; others get the 403
    page naming it (the services' own refusal), rather than the admin's login, which would not
    help them."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def guarded(request, *args, **kwargs):
            services.permission_require(request.user, None, permission, "open this page")
            return view(request, *args, **kwargs)

        return guarded

    return decorate


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
