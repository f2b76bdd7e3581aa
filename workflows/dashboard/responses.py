"""What the dashboard's views answer with besides their page: a 404 page, one page of a list, and
a service's outcome reported as a flash message."""

from collections.abc import Callable

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.shortcuts import render

from workflows.services import Forbidden, ServiceError


def not_found(request, message: str):
    """The site's 404 page with the dashboard's reason for it."""
    return render(request, "404.html", {"message": message}, status=404)


def page_of(request, rows, per_page: int) -> Page:
    """The ?page= page of `rows`: the last one past the end, the first if it is not a number."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def carry_out(request, action: Callable[[], object], success: str) -> bool:
    """Run a service call; tell the user it worked or why it was refused."""
    try:
        action()
    except Forbidden:
        raise  # the 403 page, not a message
    except ServiceError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True
