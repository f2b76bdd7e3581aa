"""One execution's page: the DAG with real edges coloured by state, the node detail, the timeline,
JSON shown as JSON, its live fragment, and cancel / re-run from failure / re-trigger.

Executions run through the real streams: a FakeWorker reads and reports tasks, `orchestrate`
applies the completions as a runorchestrator process does."""

import json
import re

import pytest
from django.test import Client

from tests import reference_payloads
from workflows import services
from workflows.models import Execution, TaskRun

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN = {
    "name": "chain",
    "dag": {
        "nodes": [
            {
                "id": "first",
                "handler": "input",
                "config": {"nested": {"list": [1, 2]}, "text": "héllo"},
                "retry": {"max_attempts": 2},
            },
            {
                "id": "second",
                "handler": "output",
                "dependencies": ["first"],
                "config": {"from": "{{ first.text }}"},
            },
        ]
    },
}
STATUSES = ["PENDING", "QUEUED", "RUNNING", "COMPLETED", "FAILED", "SKIPPED", "CANCELLED"]


@pytest.fixture
def browser(alice) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


@pytest.fixture(autouse=True)
def immediate_retries(settings):
    settings.RETRY_BACKOFF_BASE = 0.0
    settings.RETRY_JITTER = 0.0


def html_of(browser: Client, execution: Execution, **params) -> str:
    response = browser.get(f"/dashboard/executions/{execution.id}", params)
    assert response.status_code == 200
    return response.content.decode()


def node_status(html: str, node_id: str) -> str:
    match = re.search(rf'data-node="{node_id}" data-status="([A-Z_]+)"', html)
    assert match, f"no node {node_id} in the graph"
    return match.group(1)


def post(browser: Client, execution: Execution, action: str, data: dict | None = None):
    browser.get(f"/dashboard/executions/{execution.id}")
    token = browser.cookies["csrftoken"].value
    return browser.post(
        f"/dashboard/executions/{execution.id}/{action}", {**(data or {}), "csrfmiddlewaretoken": token}
    )


def run_to_the_end(worker, orchestrate, *, fail: frozenset = frozenset()) -> None:
    """Every task succeeds (those in `fail` fail for good) until nothing is left to run."""
    while taken := worker.take():
        for node_id, entry in taken.items():
            if node_id in fail:
                worker.fail(entry, permanent=True)
            else:
                worker.succeed(entry, output={"node": node_id, "value": {"deep": [1, 2, 3]}})
        orchestrate()


# --- the graph -------------------------------------------------------------------------------


def test_the_graph_has_an_edge_for_every_dependency(browser, start_workflow):
    payload = reference_payloads.load("complex_dag")
    execution = start_workflow(payload)

    html = html_of(browser, execution)

    edges = set(
        re.findall(r'<path class="edge[^"]*" data-source="([\w-]+)" data-target="([\w-]+)" d="M', html)
    )
    expected = {(dep, node["id"]) for node in payload["dag"]["nodes"] for dep in node["dependencies"]}
    assert edges == expected
    assert {("fetch_users", "match_products"), ("fetch_products", "match_products")} <= edges
    assert html.count('marker-end="url(#arrow)"') == len(expected)


def test_nodes_are_coloured_by_state_with_a_legend_and_open_their_detail(browser, start_workflow):
    execution = start_workflow(reference_payloads.load("complex_dag"))

    html = html_of(browser, execution)

    assert node_status(html, "input") == "QUEUED"
    assert node_status(html, "output") == "PENDING"
    assert '<g class="node QUEUED" data-node="input"' in html
    for status in STATUSES:
        assert f'<span class="{status}"><i></i>{status.lower()}</span>' in html
    assert '<a href="?node=match_products" data-node-link="match_products">' in html


def test_a_node_a_worker_is_running_shows_as_running(browser, start_workflow, worker):
    execution = start_workflow(CHAIN)
    worker.take()  # admitted: the worker holds its claim in Redis

    html = html_of(browser, execution, node="first")

    assert node_status(html, "first") == "RUNNING"
    assert '<span class="state RUNNING">RUNNING</span>' in html
    assert "worker-1" in html  # the node detail names the worker
    assert "running for" in html


def test_states_and_edges_follow_the_run_to_the_end(browser, start_workflow, worker, orchestrate):
    execution = start_workflow(CHAIN)
    run_to_the_end(worker, orchestrate)

    html = html_of(browser, execution)

    assert node_status(html, "first") == "COMPLETED" and node_status(html, "second") == "COMPLETED"
    assert '<path class="edge done" data-source="first" data-target="second"' in html
    assert 'data-live-state="done"' in html
    assert "Cancel execution" not in html and "Re-run from failure" not in html


def test_a_dag_too_big_to_draw_says_so_and_keeps_the_table(browser, start_workflow, monkeypatch):
    monkeypatch.setattr("workflows.dashboard.graph.GRAPH_MAX_NODES", 1)
    monkeypatch.setattr("workflows.dashboard.executions.GRAPH_MAX_NODES", 1)
    execution = start_workflow(CHAIN)

    html = html_of(browser, execution)

    assert '<svg class="graph"' not in html
    assert "more than 1 nodes, too many to draw" in html
    assert 'data-node="second"' in html  # its row in the task table


# --- node detail, JSON, timeline -------------------------------------------------------------


def test_the_node_detail_shows_attempts_errors_config_output_and_timings(
    browser, start_workflow, worker, orchestrate, streams
):
    execution = start_workflow(CHAIN)
    worker.fail(worker.take()["first"])  # a retryable failure: attempt 2 follows
    orchestrate()
    streams.move_due_delayed()
    worker.succeed(worker.take()["first"], output={"text": "héllo", "rows": [{"id": 1}]})
    orchestrate()

    html = html_of(browser, execution, node="first")
    detail = html[html.index('id="node-detail"') :]

    assert '<span class="state COMPLETED">COMPLETED</span>' in detail
    assert "<strong>#1</strong>" in detail and "<strong>#2</strong>" in detail
    assert "handler / upstream_down" in detail  # attempt 1: category / code
    assert "first failed" in detail  # its message
    assert "Traceback" in detail and "HandlerError" in detail
    assert "Resolved config" in detail
    assert "&quot;nested&quot;: {\n    &quot;list&quot;: [\n      1," in detail  # indented JSON
    assert "&quot;text&quot;: &quot;héllo&quot;" in detail  # not escaped to \\u00e9
    assert "&quot;rows&quot;: [" in detail
    assert "{'" not in detail  # never a Python repr
    assert "worker-1" in detail and "waited" in detail and "ran" in detail
    assert 'data-node-link="second">second</a>' in detail  # its child


def test_a_pending_node_shows_its_config_as_defined(browser, start_workflow):
    execution = start_workflow(CHAIN)

    detail = html_of(browser, execution, node="second")

    assert "as defined; resolved when queued" in detail
    assert "&quot;from&quot;: &quot;{{ first.text }}&quot;" in detail


def test_long_outputs_are_cut_with_the_whole_value_one_click_away(
    browser, start_workflow, worker, orchestrate
):
    execution = start_workflow(CHAIN)
    worker.succeed(worker.take()["first"], output={"big": "x" * 6000, "end": "THE-END"})
    orchestrate()

    table = html_of(browser, execution)
    detail = html_of(browser, execution, node="first")

    assert '<pre class="preview">' in table and "THE-END" not in table.split('id="json-out-first"')[0]
    assert '<details id="json-node-output"><summary>Show the whole value' in detail
    assert "THE-END" in detail


def test_the_timeline_has_a_bar_per_queued_task_on_the_executions_span(
    browser, start_workflow, worker, orchestrate
):
    execution = start_workflow(CHAIN)
    run_to_the_end(worker, orchestrate)

    html = html_of(browser, execution)
    timeline = html[
        html.index('<table class="timeline">') : html.index("</table>", html.index('class="timeline"'))
    ]

    assert timeline.count('<rect class="run COMPLETED"') == 2
    lefts = [float(x) for x in re.findall(r'<rect class="run COMPLETED" x="([\d.]+)%"', timeline)]
    assert lefts == sorted(lefts) and all(0 <= x <= 100 for x in lefts)


def test_the_live_fragment_is_the_changing_part_and_keeps_the_selected_node(browser, start_workflow):
    execution = start_workflow(CHAIN)

    response = browser.get(f"/dashboard/executions/{execution.id}/live", {"node": "first"})
    fragment = response.content.decode()

    assert response.status_code == 200 and "<html" not in fragment
    assert fragment.startswith('<div id="execution-live"')
    assert f'data-live-url="/dashboard/executions/{execution.id}/live?node=first"' in fragment
    assert 'data-live-state="running"' in fragment and 'id="node-detail"' in fragment
    assert 'data-live-interval="1000"' in fragment
    assert 'id="retrigger" data-live-keep' in fragment


def test_a_big_execution_refreshes_less_often(browser, start_workflow, monkeypatch):
    monkeypatch.setattr("workflows.dashboard.executions.BIG_EXECUTION", 1)
    execution = start_workflow(CHAIN)

    assert 'data-live-interval="3000"' in html_of(browser, execution)


def test_another_users_execution_is_a_404_page(browser, bob):
    other = services.workflow_submit(payload=CHAIN, owner=bob)

    for suffix in ["", "/live"]:
        response = browser.get(f"/dashboard/executions/{other.id}{suffix}")
        assert response.status_code == 404
        assert "no execution" in response.content.decode().lower()


# --- actions ---------------------------------------------------------------------------------


def test_cancel_needs_the_csrf_token_and_then_cancels(browser, start_workflow):
    execution = start_workflow(CHAIN)

    assert browser.post(f"/dashboard/executions/{execution.id}/cancel").status_code == 403
    response = post(browser, execution, "cancel")

    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED


def test_a_failed_execution_is_re_run_from_its_failure(browser, start_workflow, worker, orchestrate):
    execution = start_workflow(CHAIN)
    run_to_the_end(worker, orchestrate, fail=frozenset({"first"}))
    assert "Re-run from failure" in html_of(browser, execution)

    response = post(browser, execution, "rerun")

    assert response.status_code == 302 and response["Location"] == f"/dashboard/executions/{execution.id}"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert TaskRun.objects.get(execution=execution, node_id="first").status == TaskRun.Status.QUEUED
    run_to_the_end(worker, orchestrate)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def test_re_run_is_refused_with_a_message_while_running(browser, start_workflow):
    execution = start_workflow(CHAIN)

    response = post(browser, execution, "rerun")

    assert response.status_code == 302
    assert "only a FAILED, TIMED_OUT or CANCELLED execution" in html_of(browser, execution)


def test_re_trigger_starts_a_new_execution_with_the_params_typed_in(browser, start_workflow, alice):
    execution = start_workflow(CHAIN, {"old": True})
    assert "&quot;old&quot;: true" in html_of(browser, execution)  # the form starts from its params

    response = post(browser, execution, "retrigger", {"params": json.dumps({"new": [1, 2]})})

    new = Execution.objects.exclude(pk=execution.pk).get(workflow=execution.workflow)
    assert response["Location"] == f"/dashboard/executions/{new.id}"
    assert (new.status, new.params, new.owner) == (Execution.Status.RUNNING, {"new": [1, 2]}, alice)


@pytest.mark.parametrize(("params", "error"), [("{oops", "Not valid JSON"), ('"text"', "not a string")])
def test_re_trigger_with_bad_params_shows_the_error_and_creates_nothing(
    browser, start_workflow, params, error
):
    execution = start_workflow(CHAIN)

    response = post(browser, execution, "retrigger", {"params": params})

    assert response.status_code == 400
    html = response.content.decode()
    assert error in html and 'id="retrigger" data-live-keep open' in html
    assert Execution.objects.count() == 1
