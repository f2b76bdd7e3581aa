"""Handlers: every registered handler with its circuit breaker, rate limit and recent outcomes.

Open to every user: circuits and limits are shared by all, and the counts cover the executions
the user may see."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from workflows import reports

WINDOW = timedelta(hours=24)


@login_required
def handler_list(request):
    since = timezone.now() - WINDOW
    return render(
        request,
        "dashboard/handlers.html",
        {"handlers": reports.handler_health(request.user, since=since), "since": since, "window": WINDOW},
    )
