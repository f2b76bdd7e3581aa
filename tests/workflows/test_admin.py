"""The executions admin as an operator uses it: the list and its status filter, an execution's page
with its task runs (a claimed one RUNNING), and the bulk cancel and re-run actions, which report
what they did and what they refused, and are offered only to holders of their permission."""

import pytest
from django.contrib.auth.models import Permission

from tests import reference_payloads
from tests.workflows.admin_pages import act, listed, offered_actions, page, signed_in, task_runs_shown
from tests.workflows.api_driver import published_tasks
from tests.workflows.scenarios import fail_permanently, started
from workflows import services
from workflows.models import Execution, TaskRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_streams", "fast_password_hashing")]

EXECUTIONS = "/admin/workflows/execution/"


@pytest.fixture
def claimed(alice, worker, django_capture_on_commit_callbacks) -> Execution:
    """alice's linear workflow whose first task a worker has claimed and is running."""
    with django_capture_on_commit_callbacks(execute=True):
        execution = started(alice, "linear_workflow")
    assert list(worker.take(consumer="host-a:4242")) == ["start"]
    return execution


def pending(owner) -> Execution:
    return services.workflow_submit(payload=reference_payloads.load("linear_workflow"), owner=owner)


def failed(owner) -> Execution:
    execution = started(owner, "linear_workflow")
    fail_permanently(execution, "start")
    return execution


def status(execution: Execution) -> str:
    execution.refresh_from_db()
    return execution.status


def staff_with(django_user_model, *codenames: str):
    """A staff user holding only the given permissions."""
    user = django_user_model.objects.create_user("stan", password="stan-password-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_the_list_shows_everyones_executions_and_filters_by_status(operator, alice, bob):
    running, waiting, broken = started(alice, "linear_workflow"), pending(bob), failed(alice)
    browser = signed_in(operator)

    everything = listed(page(browser, EXECUTIONS))
    only_failed = listed(page(browser, f"{EXECUTIONS}?status__exact=FAILED"))

    assert everything == {str(running.pk): "Running", str(waiting.pk): "Pending", str(broken.pk): "Failed"}
    assert only_failed == {str(broken.pk): "Failed"}


def test_the_execution_page_shows_its_task_runs_with_the_claimed_one_running(admin_client, claimed):
    shown = task_runs_shown(page(admin_client, f"{EXECUTIONS}{claimed.pk}/change/"))

    assert {node: row["status"] for node, row in shown.items()} == {
        "start": "Running",
        "process": "Pending",
        "finish": "Pending",
    }
    assert shown["start"]["worker"] == "host-a:4242"
    assert shown["start"]["started_at"] != "-"
    assert shown["process"]["worker"] == "-"


def test_operators_see_the_task_runs_on_the_execution_page(operator, claimed):
    shown = task_runs_shown(page(signed_in(operator), f"{EXECUTIONS}{claimed.pk}/change/"))

    assert shown["start"]["status"] == "Running"


def test_operators_are_offered_cancel_and_rerun_and_nothing_else(operator, alice):
    started(alice, "linear_workflow")

    assert offered_actions(page(signed_in(operator), EXECUTIONS)) == {"cancel_selected", "rerun_selected"}


def test_cancel_cancels_the_unfinished_and_lists_the_refused_with_the_reason(
    operator, alice, bob, streams, django_capture_on_commit_callbacks
):
    running, waiting, broken = started(alice, "linear_workflow"), pending(bob), failed(alice)

    with django_capture_on_commit_callbacks(execute=True):
        shown = act(signed_in(operator), EXECUTIONS, "cancel_selected", [running.pk, waiting.pk, broken.pk])

    assert shown == [
        ("success", "2 execution(s) cancelled."),
        ("warning", f"1 not cancelled: #{broken.pk}: execution is already FAILED"),
    ]
    assert (status(running), status(waiting), status(broken)) == ("CANCELLED", "CANCELLED", "FAILED")
    assert set(TaskRun.objects.filter(execution=running).values_list("status", flat=True)) == {"CANCELLED"}
    # Workers drop the cancelled executions' tasks still on the stream.
    assert streams.cancelled_executions([str(running.pk), str(broken.pk)]) == {str(running.pk)}


def test_rerun_resumes_the_failed_and_lists_the_refused_with_the_reason(
    operator, alice, streams, django_capture_on_commit_callbacks
):
    broken, running = failed(alice), started(alice, "linear_workflow")
    never_started = pending(alice)
    services.execution_cancel(execution=never_started, user=alice)

    with django_capture_on_commit_callbacks(execute=True):
        shown = act(
            signed_in(operator), EXECUTIONS, "rerun_selected", [broken.pk, running.pk, never_started.pk]
        )

    assert shown[0] == ("success", "1 execution(s) re-run.")
    level, refused = shown[1]
    assert (level, refused.split(": #")[0]) == ("warning", "2 not re-run")
    assert f"#{running.pk}: execution is RUNNING; only a FAILED, TIMED_OUT or CANCELLED" in refused
    assert f"#{never_started.pk}: execution was cancelled before it started" in refused
    assert (status(broken), status(running), status(never_started)) == ("RUNNING", "RUNNING", "CANCELLED")
    assert TaskRun.objects.get(execution=broken, node_id="start").status == TaskRun.Status.QUEUED
    assert [(t.execution_id, t.node_id) for t in published_tasks(streams)] == [(str(broken.pk), "start")]


NOT_OFFERED = [("warning", "No action selected.")]  # what Django answers to an action it did not offer


@pytest.mark.parametrize(
    ("codenames", "offered", "answer"),
    [
        (("view_execution",), set(), []),  # no action box at all: the post is a plain page load
        (("view_execution", "run_any_execution"), {"rerun_selected"}, NOT_OFFERED),
        (("view_execution", "cancel_any_execution"), {"cancel_selected"}, NOT_OFFERED),
    ],
    ids=["view_only", "may_run", "may_cancel"],
)
def test_staff_without_the_permission_are_not_offered_the_action_and_cannot_run_it(
    django_user_model, alice, codenames, offered, answer
):
    running, broken = started(alice, "linear_workflow"), failed(alice)
    browser = signed_in(staff_with(django_user_model, *codenames))

    assert offered_actions(page(browser, EXECUTIONS)) == offered
    for action in {"cancel_selected", "rerun_selected"} - offered:
        assert act(browser, EXECUTIONS, action, [running.pk, broken.pk]) == answer
    assert (status(running), status(broken)) == ("RUNNING", "FAILED")
