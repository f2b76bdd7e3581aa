"""The dashboard's pages: its own login, the executions list (filters, search, pages, live rows),
workflows with their trigger form, handler health, the dead-letter queue for operators, and the site's
404 and 500 pages."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlq.models import DeadLetter
from tests.workflows.scenarios import fail_permanently, started
from workflows import services
from workflows.api.errors import server_error
from workflows.models import Execution, TaskRun, Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_browser(alice) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    return browser


@pytest.fixture
def bob_browser(bob) -> Client:
    browser = Client()
    browser.force_login(bob)
    return browser


@pytest.fixture
def operator_browser(operator) -> Client:
    browser = Client()
    browser.force_login(operator)
    return browser


def csrf_token(browser: Client, url: str) -> str:
    browser.get(url)
    return browser.cookies["csrftoken"].value


def page(browser: Client, url: str, **params) -> str:
    response = browser.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


# --- login -----------------------------------------------------------------------------------


def test_pages_send_anonymous_users_to_the_dashboards_own_login(client):
    for url in ["/dashboard/", "/dashboard/workflows", "/dashboard/handlers", "/dashboard/dlq"]:
        response = client.get(url)

        assert response.status_code == 302
        assert response["Location"] == f"/dashboard/login/?next={url}"


def test_a_non_staff_user_logs_in_and_out_through_the_dashboard(alice):
    browser = Client(enforce_csrf_checks=True)
    form = page(browser, "/dashboard/login/", next="/dashboard/workflows")
    assert 'name="username"' in form and 'name="password"' in form

    response = browser.post(
        "/dashboard/login/",
        {
            "username": "alice",
            "password": "alice-password-1",
            "next": "/dashboard/workflows",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
        },
    )

    assert response.status_code == 302 and response["Location"] == "/dashboard/workflows"
    assert "alice" in page(browser, "/dashboard/")
    token = csrf_token(browser, "/dashboard/")
    assert (
        browser.post("/dashboard/logout/", {"csrfmiddlewaretoken": token})["Location"] == "/dashboard/login/"
    )
    assert browser.get("/dashboard/").status_code == 302


def test_a_wrong_password_is_refused_on_the_login_page(alice, client):
    response = client.post("/dashboard/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_pages_load_their_script_and_styles_from_static_files_only(alice_browser, alice, streams):
    html = page(alice_browser, f"/dashboard/executions/{started(alice).id}")

    assert re.search(r'<script src="/static/dashboard/live\.js" defer>', html)
    assert "/static/dashboard/dashboard.css" in html
    # CSP-friendly: no inline script, no inline style, no inline event handler.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert alice_browser.get("/static/dashboard/live.js").status_code == 200


# --- executions list -------------------------------------------------------------------------


def test_the_list_shows_only_the_users_executions_and_staff_see_all(
    alice_browser, operator_browser, alice, bob, streams
):
    mine, theirs = started(alice), started(bob)

    html = page(alice_browser, "/dashboard/")
    everything = page(operator_browser, "/dashboard/")

    assert str(mine.id) in html and str(theirs.id) not in html
    assert "RUNNING" in html
    assert str(mine.id) in everything and str(theirs.id) in everything


def test_the_list_filters_by_status_and_workflow(alice_browser, alice, streams):
    running = started(alice)
    pending = services.execution_create(workflow=running.workflow, owner=alice)
    other = started(alice, "linear_workflow")

    by_status = page(alice_browser, "/dashboard/", status="PENDING")
    by_workflow = page(alice_browser, "/dashboard/", workflow=str(other.workflow_id))

    assert str(pending.id) in by_status and str(running.id) not in by_status
    assert str(other.id) in by_workflow and str(running.id) not in by_workflow
    assert other.workflow.name in by_workflow


def test_the_list_finds_an_execution_by_its_id_or_a_prefix(alice_browser, alice, streams):
    one, two = started(alice), started(alice)

    by_prefix = page(alice_browser, "/dashboard/", id=str(one.id)[:6].upper())
    by_full_id = page(alice_browser, "/dashboard/", id=str(two.id))
    nonsense = page(alice_browser, "/dashboard/", id="not-hex!")

    assert str(one.id) in by_prefix and str(two.id) not in by_prefix
    assert str(two.id) in by_full_id and str(one.id) not in by_full_id
    assert "hex digits" in nonsense and str(one.id) in nonsense  # shown, not applied


def test_the_list_filters_by_creation_date(alice_browser, alice, streams):
    old, new = started(alice), started(alice)
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    today = timezone.now().date()

    recent = page(alice_browser, "/dashboard/", created_from=str(today - timedelta(days=1)))
    older = page(alice_browser, "/dashboard/", created_to=str(today - timedelta(days=5)))

    assert str(new.id) in recent and str(old.id) not in recent
    assert str(old.id) in older and str(new.id) not in older


def test_the_list_is_paginated(alice_browser, alice, streams):
    workflow = started(alice).workflow
    for _ in range(55):
        services.execution_create(workflow=workflow, owner=alice)

    first = page(alice_browser, "/dashboard/")
    second = page(alice_browser, "/dashboard/", page=2)

    assert first.count('<tr data-execution="') == 50
    assert second.count('<tr data-execution="') == 6
    assert 'page=2" rel="next"' in first and "51\u201356 of 56" in second


def test_the_list_shows_how_long_each_execution_took(alice_browser, alice, streams):
    execution = started(alice)
    Execution.objects.filter(pk=execution.pk).update(
        started_at=timezone.now() - timedelta(seconds=130), finished_at=timezone.now(), status="COMPLETED"
    )

    assert "2 min 10 s" in page(alice_browser, "/dashboard/")


def test_the_rows_fragment_refreshes_while_something_runs_and_idles_after(alice_browser, alice, streams):
    execution = started(alice)

    live = page(alice_browser, "/dashboard/executions/rows", status="RUNNING")
    services.execution_cancel(execution=execution, user=execution.owner)
    idle = page(alice_browser, "/dashboard/executions/rows")

    assert live.lstrip().startswith("<div") and "<html" not in live
    assert 'data-live-url="/dashboard/executions/rows?status=RUNNING"' in live
    assert 'data-live-state="running"' in live and str(execution.id) in live
    assert 'data-live-state="done"' in idle and "CANCELLED" in idle


# --- workflows -------------------------------------------------------------------------------


def test_the_workflows_page_shows_counts_success_rates_and_links(alice_browser, alice, bob, streams):
    first = started(alice)
    workflow = first.workflow
    second = services.execution_create(workflow=workflow, owner=alice)
    Execution.objects.filter(pk=first.pk).update(status="COMPLETED")
    Execution.objects.filter(pk=second.pk).update(status="FAILED")
    hidden = started(bob, "linear_workflow").workflow

    html = page(alice_browser, "/dashboard/workflows")

    row = html[html.index(f'data-workflow="{workflow.id}"') :]
    row = row[: row.index("</tr>")]
    assert workflow.name in row and "50 %" in row and "1 of 2 ended" in row
    assert f'href="/dashboard/?workflow={workflow.id}">2</a>' in row
    assert f'action="/dashboard/workflows/{workflow.id}/trigger"' in row
    assert str(hidden.id) not in html


def test_triggering_from_the_workflows_page_opens_the_new_execution(alice_browser, alice, streams):
    workflow = started(alice).workflow
    token = csrf_token(alice_browser, "/dashboard/workflows")

    response = alice_browser.post(
        f"/dashboard/workflows/{workflow.id}/trigger",
        {"params": '{"data": "yes", "n": [1, 2]}', "csrfmiddlewaretoken": token},
    )

    new = Execution.objects.filter(workflow=workflow).order_by("-created_at").first()
    assert response.status_code == 302 and response["Location"] == f"/dashboard/executions/{new.id}"
    assert new.status == Execution.Status.RUNNING and new.params == {"data": "yes", "n": [1, 2]}
    assert new.owner == alice


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ('{"data": ', "Not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"x": "\\u0000"}', "NUL character"),
    ],
)
def test_invalid_params_are_shown_on_the_form_and_start_nothing(alice_browser, alice, streams, params, error):
    workflow = started(alice).workflow
    token = csrf_token(alice_browser, "/dashboard/workflows")

    response = alice_browser.post(
        f"/dashboard/workflows/{workflow.id}/trigger", {"params": params, "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 400
    assert error in response.content.decode()
    assert Execution.objects.filter(workflow=workflow).count() == 1


def test_another_users_workflow_cannot_be_seen_or_triggered(bob_browser, alice, streams):
    workflow = started(alice).workflow

    assert bob_browser.get(f"/dashboard/workflows/{workflow.id}").status_code == 404
    assert (
        bob_browser.post(f"/dashboard/workflows/{workflow.id}/trigger", {"params": "{}"}).status_code == 404
    )
    assert Execution.objects.filter(workflow=workflow).count() == 1


def test_a_workflows_page_draws_its_definition_and_lists_its_runs(alice_browser, alice, streams):
    execution = started(alice)

    html = page(alice_browser, f"/dashboard/workflows/{execution.workflow_id}")

    assert 'data-source="fetch_users" data-target="match_products"' in html
    assert str(execution.id)[:10] in html
    assert "&quot;handler&quot;: &quot;call_external_service&quot;" in html  # definition as JSON


def test_workflows_can_be_searched_by_name(alice_browser, alice, streams):
    complex_dag, linear = started(alice).workflow, started(alice, "linear_workflow").workflow

    html = page(alice_browser, "/dashboard/workflows", q=complex_dag.name[:7].lower())

    assert str(complex_dag.id) in html and str(linear.id) not in html
    assert Workflow.objects.count() == 2


# --- handlers --------------------------------------------------------------------------------


def test_the_handlers_page_shows_circuits_limits_and_recent_outcomes(alice_browser, alice, streams, settings):
    settings.RATE_LIMITS = {"call_llm": "20/s"}
    streams.client.hset(
        streams.circuit_key("call_external_service"),
        mapping={"state": "open", "failures": "5", "until": str(timezone.now().timestamp() + 30)},
    )
    execution = started(alice)
    now = timezone.now()
    TaskRun.objects.filter(execution=execution, node_id="input").update(
        status="COMPLETED", started_at=now - timedelta(seconds=2), finished_at=now
    )

    html = page(alice_browser, "/dashboard/handlers")

    for name in ["input", "output", "decision", "call_external_service", "call_llm", "delay"]:
        assert f'data-handler="{name}"' in html
    external = html[html.index('data-handler="call_external_service"') :]
    assert "OPEN" in external[: external.index("</tr>")] and "5 failures in a row" in external
    llm = html[html.index('data-handler="call_llm"') :]
    assert "20/s" in llm[: llm.index("</tr>")]
    row = html[html.index('data-handler="input"') :]
    row = row[: row.index("</tr>")]
    assert "2.0 s" in row and "100 %" in row


# --- dead letters ----------------------------------------------------------------------------


def test_a_user_without_the_permission_gets_a_clear_page_for_dead_letters(alice_browser):
    response = alice_browser.get("/dashboard/dlq")

    assert response.status_code == 403
    assert "takes the dlq.view_deadletter permission" in response.content.decode()
    assert "/admin/login/" not in response.content.decode()
    assert 'href="/dashboard/dlq"' not in page(alice_browser, "/dashboard/")


def test_dead_letters_show_their_error_as_json_and_can_be_retried(operator_browser, alice, streams):
    execution = started(alice, "linear_workflow")
    letter = fail_permanently(execution, "start")

    html = page(operator_browser, "/dashboard/dlq")
    response = operator_browser.post(
        f"/dashboard/dlq/{letter.id}/retry", {"note": "fixed", "query": "status=OPEN"}
    )

    assert "broken input" in html
    assert "&quot;code&quot;: &quot;bad_input&quot;," in html  # pretty JSON, not a Python repr
    assert "&quot;traceback&quot;" not in html and "ValueError: broken input" in html  # shown apart
    assert response.status_code == 302 and response["Location"] == "/dashboard/dlq?status=OPEN"
    letter.refresh_from_db()
    execution.refresh_from_db()
    assert (letter.status, letter.note) == (DeadLetter.Status.RETRIED, "fixed")
    assert execution.status == Execution.Status.RUNNING


def test_dead_letters_can_be_discarded_and_filtered(operator_browser, alice, streams):
    letter = fail_permanently(started(alice, "linear_workflow"), "start")

    operator_browser.post(f"/dashboard/dlq/{letter.id}/discard")

    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.DISCARDED
    assert f'data-letter="{letter.id}"' not in page(operator_browser, "/dashboard/dlq")
    assert f'data-letter="{letter.id}"' in page(operator_browser, "/dashboard/dlq", status="ALL")
    assert f'data-letter="{letter.id}"' not in page(
        operator_browser, "/dashboard/dlq", status="ALL", handler="x"
    )


# --- error pages ----------------------------------------------------------------------------


def test_an_unknown_page_is_the_dashboards_404_with_the_menu_once_logged_in(alice_browser, client):
    response = alice_browser.get("/dashboard/no-such-page")
    html = response.content.decode()

    assert response.status_code == 404
    assert "There is no page at <code>/dashboard/no-such-page</code>" in html
    assert 'class="topbar"' in html and "alice" in html and "/static/dashboard/dashboard.css" in html

    anonymous = client.get("/no-such-page")
    assert anonymous.status_code == 404 and 'class="login-card"' in anonymous.content.decode()
    assert "after logging in" in anonymous.content.decode()


def test_an_unknown_api_path_is_still_a_json_404(alice_browser):
    response = alice_browser.get("/api/v1/no-such-endpoint")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_server_error_is_a_static_page_that_needs_no_database(alice_browser, monkeypatch, rf):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("workflows.dashboard.handler_health.reports.handler_health", broken)
    alice_browser.raise_request_exception = False

    response = alice_browser.get("/dashboard/handlers")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode() and "boom" not in response.content.decode()
    with CaptureQueriesContext(connection) as queries:
        page = server_error(rf.get("/dashboard/handlers"))
    assert page.status_code == 500 and "/static/dashboard/dashboard.css" in page.content.decode()
    assert len(queries) == 0
