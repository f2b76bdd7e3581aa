"""The dead-letter triage console in the admin as an operator uses it: the list filtered by the
buckets people triage by, a letter's page, and bulk retry and discard, which report what they did
and what they refused, and are offered only to holders of the permission to change dead letters."""

import pytest
from django.contrib.auth.models import Permission

from dlq.models import DeadLetter
from tests.workflows.admin_pages import act, listed, offered_actions, page, signed_in
from tests.workflows.api_driver import apply, exhausted_failure, published_tasks
from tests.workflows.scenarios import fail_permanently, started
from workflows.models import Execution, TaskRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_streams", "fast_password_hashing")]

LETTERS = "/admin/dlq/deadletter/"


@pytest.fixture
def letters(alice, streams, django_capture_on_commit_callbacks) -> dict[str, DeadLetter]:
    """Three letters in different buckets: `invalid` (input, validation, bad_input) and `upstream`
    (call_external_service, handler, http_error) are open; `closed` (like `invalid`) is discarded."""
    with django_capture_on_commit_callbacks(execute=True):
        slow = started(alice, "timeout_test")
    [task] = published_tasks(streams)
    apply(exhausted_failure(task, "upstream said no"))
    closed = fail_permanently(started(alice, "linear_workflow"), "start")
    DeadLetter.objects.filter(pk=closed.pk).update(status=DeadLetter.Status.DISCARDED)
    return {
        "invalid": fail_permanently(started(alice, "linear_workflow"), "start"),
        "upstream": DeadLetter.objects.get(execution=slow),
        "closed": closed,
    }


def shown(letters: dict[str, DeadLetter], text: str) -> dict[str, str]:
    """The listed letters by their names in `letters`, with the status shown."""
    names = {str(letter.pk): name for name, letter in letters.items()}
    return {names[pk]: status for pk, status in listed(text).items()}


def resolved(letter: DeadLetter) -> tuple:
    letter.refresh_from_db()
    return letter.status, letter.resolved_by.username if letter.resolved_by else None, letter.note


def execution_status(letter: DeadLetter) -> str:
    return Execution.objects.get(pk=letter.execution_id).status


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("?", {"invalid": "Open", "upstream": "Open", "closed": "Discarded"}),
        ("?status__exact=OPEN", {"invalid": "Open", "upstream": "Open"}),
        ("?status__exact=DISCARDED", {"closed": "Discarded"}),
        ("?handler=call_external_service", {"upstream": "Open"}),
        ("?category=validation", {"invalid": "Open", "closed": "Discarded"}),
        ("?code=http_error", {"upstream": "Open"}),
    ],
)
def test_the_list_filters_by_status_handler_category_and_code(operator, letters, link, expected):
    browser = signed_in(operator)

    assert f'href="{link}"' in page(browser, LETTERS), "the filter is not offered"
    assert shown(letters, page(browser, LETTERS + link)) == expected


def test_a_letters_page_shows_its_error_read_only(operator, letters):
    text = page(signed_in(operator), f"{LETTERS}{letters['invalid'].pk}/change/")

    assert "broken input" in text
    assert "ValueError: broken input" in text
    assert "/delete/" not in text
    assert 'name="_save"' not in text  # triage is the actions' job: nothing to edit or save here


def test_operators_are_offered_retry_and_discard_and_nothing_else(operator, letters):
    assert offered_actions(page(signed_in(operator), LETTERS)) == {"retry_selected", "discard_selected"}


def test_retry_resumes_the_executions_and_lists_the_refused_with_the_reason(
    operator, letters, streams, django_capture_on_commit_callbacks
):
    invalid, upstream, closed = letters["invalid"], letters["upstream"], letters["closed"]
    published_before = len(published_tasks(streams))

    with django_capture_on_commit_callbacks(execute=True):
        messages = act(signed_in(operator), LETTERS, "retry_selected", [invalid.pk, upstream.pk, closed.pk])

    assert messages == [
        ("success", "2 dead letter(s) retried."),
        ("warning", f"1 not retried: #{closed.pk}: dead letter is already DISCARDED"),
    ]
    assert resolved(invalid) == ("RETRIED", "olga", "retried from the admin")
    assert resolved(upstream) == ("RETRIED", "olga", "retried from the admin")
    assert resolved(closed)[0] == "DISCARDED"
    assert (execution_status(invalid), execution_status(upstream)) == ("RUNNING", "RUNNING")
    assert execution_status(closed) == "FAILED"
    requeued = published_tasks(streams)[published_before:]
    assert sorted((t.execution_id, t.node_id, t.attempt) for t in requeued) == sorted(
        [(str(invalid.execution_id), "start", 2), (str(upstream.execution_id), "slow_task", 2)]
    )
    assert TaskRun.objects.get(execution_id=invalid.execution_id, node_id="start").status == "QUEUED"


def test_discard_closes_the_letters_leaves_the_executions_failed_and_lists_the_refused(operator, letters):
    invalid, upstream, closed = letters["invalid"], letters["upstream"], letters["closed"]
    DeadLetter.objects.filter(pk=closed.pk).update(status=DeadLetter.Status.RETRIED)

    messages = act(signed_in(operator), LETTERS, "discard_selected", [invalid.pk, upstream.pk, closed.pk])

    assert messages == [
        ("success", "2 dead letter(s) discarded."),
        ("warning", f"1 not discarded: #{closed.pk}: dead letter is already RETRIED"),
    ]
    assert resolved(invalid) == ("DISCARDED", "olga", "discarded from the admin")
    assert resolved(upstream) == ("DISCARDED", "olga", "discarded from the admin")
    assert resolved(closed)[0] == "RETRIED"
    assert (execution_status(invalid), execution_status(upstream)) == ("FAILED", "FAILED")


@pytest.mark.parametrize("action", ["retry_selected", "discard_selected"])
def test_staff_who_may_only_view_are_not_offered_triage_and_cannot_run_it(django_user_model, letters, action):
    viewer = django_user_model.objects.create_user("stan", password="stan-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    browser = signed_in(viewer)

    assert shown(letters, page(browser, LETTERS + "?status__exact=OPEN")) == {
        "invalid": "Open",
        "upstream": "Open",
    }
    assert offered_actions(page(browser, LETTERS)) == set()
    assert act(browser, LETTERS, action, [letters["invalid"].pk, letters["upstream"].pk]) == []
    assert resolved(letters["invalid"]) == ("OPEN", None, "")
    assert resolved(letters["upstream"]) == ("OPEN", None, "")
    assert execution_status(letters["invalid"]) == "FAILED"
