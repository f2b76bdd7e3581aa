"""The server-rendered dashboard: login, live lists, the DAG page, cancel and DLQ buttons."""

import pytest
from django.db import transaction
from django.test import Client

from dlq.models import DeadLetter
from tests import reference_payloads
from workflows import engine, services
from workflows.messages import CompletionMessage
from workflows.models import Execution, TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_browser(alice) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    return browser


@pytest.fixture
def operator_browser(operator) -> Client:
    browser = Client()
    browser.force_login(operator)
    return browser


def started(owner, name="complex_dag") -> Execution:
    execution = services.workflow_submit(payload=reference_payloads.load(name), owner=owner)
    return services.execution_trigger(execution=execution, params={})


def test_pages_need_a_login(client):
    response = client.get("/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_list_shows_only_the_users_executions(alice_browser, alice, bob, streams):
    mine, theirs = started(alice), started(bob)

    page = alice_browser.get("/dashboard/").content.decode()

    assert str(mine.id) in page
    assert str(theirs.id) not in page
    assert "RUNNING" in page


def test_the_execution_page_draws_the_dag_by_depth_and_lists_tasks(alice_browser, alice, streams):
    execution = started(alice)

    page = alice_browser.get(f"/dashboard/executions/{execution.id}").content.decode()

    assert page.count('class="column"') == 5  # input → fetches → llm/match → combine → output
    assert 'class="node QUEUED"' in page
    assert "combine_insights" in page
    assert "Cancel execution" in page


def test_another_users_execution_is_a_404(alice_browser, bob, streams):
    assert alice_browser.get(f"/dashboard/executions/{started(bob).id}").status_code == 404


def test_cancel_needs_the_csrf_token_and_then_cancels(alice_browser, alice, streams):
    execution = started(alice)
    url = f"/dashboard/executions/{execution.id}/cancel"

    assert alice_browser.post(url).status_code == 403
    alice_browser.get(f"/dashboard/executions/{execution.id}")
    token = alice_browser.cookies["csrftoken"].value
    response = alice_browser.post(url, {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_dead_letters_are_staff_only_and_can_be_retried(operator_browser, alice_browser, alice, streams):
    execution = started(alice, "linear_workflow")
    start = TaskRun.objects.get(execution=execution, node_id="start")
    failure = CompletionMessage(
        task_id=start.id,
        execution_id=str(execution.id),
        node_id="start",
        attempt=start.attempt,
        ok=False,
        error={"category": "validation", "code": "bad", "message": "broken input", "permanent": True},
    )
    with transaction.atomic():
        engine.completions_apply([failure])
    letter = DeadLetter.objects.get(execution=execution)

    assert alice_browser.get("/dashboard/dlq").status_code == 302
    page = operator_browser.get("/dashboard/dlq").content.decode()
    assert "broken input" in page
    response = operator_browser.post(f"/dashboard/dlq/{letter.id}/retry")

    assert response.status_code == 302
    letter.refresh_from_db()
    execution.refresh_from_db()
    assert letter.status == DeadLetter.Status.RETRIED
    assert execution.status == Execution.Status.RUNNING
