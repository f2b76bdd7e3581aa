"""`map_over`: a node runs once per item of a list, its dependents wait for every item, and its
output is the list of the items' outputs in order. Real PostgreSQL (or SQLite), the real streams,
a fake worker and the real orchestrator, through both engine paths."""

import pytest
from django.test import Client

from dlq.models import DeadLetter
from workflows import client, services, triage
from workflows.dag import DagError
from workflows.models import Execution, TaskRun
from workflows.selectors import execution_status_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]


def mapped_dag(map_over: str = "{{ fetch.items }}") -> dict:
    return {
        "nodes": [
            {"id": "fetch", "handler": "input", "dependencies": []},
            {
                "id": "each",
                "handler": "input",
                "dependencies": ["fetch"],
                "map_over": map_over,
                "config": {"value": "{{ item }}", "position": "{{ index }}", "tag": "{{ fetch.tag }}"},
            },
            {"id": "report", "handler": "output", "dependencies": ["each"], "config": {"all": "{{ each }}"}},
        ]
    }


def assert_report_completes(execution, worker, orchestrate, outputs: list) -> None:
    """The node after the map gets the items' outputs in order, and the run completes."""
    [report] = worker.take().values()
    assert report.message.config == {"all": outputs}
    worker.succeed(report)
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED


def statuses(execution) -> dict:
    return dict(TaskRun.objects.filter(execution=execution).values_list("node_id", "status"))


def test_a_mapped_node_runs_once_per_item_and_outputs_their_results_in_order(
    streams, alice, worker, orchestrate
):
    execution = client.submit(mapped_dag(), name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {"items": ["a", "b", "c"], "tag": "t1"})
    orchestrate()

    items = worker.take()
    assert sorted(items) == ["each[0]", "each[1]", "each[2]"]
    assert items["each[1]"].message.config == {"value": "b", "position": 1, "tag": "t1"}
    assert items["each[1]"].message.handler == "input"
    assert statuses(execution)["each"] == TaskRun.Status.RUNNING
    for item_id in ["each[2]", "each[0]", "each[1]"]:  # finishing out of order
        worker.succeed(items[item_id], {"got": items[item_id].message.config["value"]})
        orchestrate()

    assert_report_completes(execution, worker, orchestrate, [{"got": "a"}, {"got": "b"}, {"got": "c"}])
    status = execution_status_for(alice, execution.pk)
    assert status["node_statuses"]["each"] == "COMPLETED"
    assert status["node_statuses"]["each[2]"] == "COMPLETED"
    assert status["progress"]["total"] == 6 and status["progress"]["completed"] == 6


def test_an_empty_list_completes_the_node_at_once_with_no_items(streams, alice, worker, orchestrate):
    execution = client.submit(mapped_dag(), name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {"items": []})
    orchestrate()

    [report] = worker.take().values()
    assert report.message.config == {"all": []}
    worker.succeed(report)
    orchestrate()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert statuses(execution) == {"fetch": "COMPLETED", "each": "COMPLETED", "report": "COMPLETED"}


def test_a_thousand_items_from_the_params(streams, alice, worker, orchestrate):
    dag = {
        "nodes": [
            {
                "id": "each",
                "handler": "input",
                "map_over": "{{ params.numbers }}",
                "config": {"n": "{{ item }}"},
            },
            {"id": "total", "handler": "output", "dependencies": ["each"], "config": {"all": "{{ each }}"}},
        ]
    }
    execution = client.submit(dag, name="wide map", params={"numbers": list(range(1000))}, owner=alice)
    orchestrate()  # nothing yet: the map starts at trigger

    items = worker.take()
    assert len(items) == 1000
    for entry in items.values():
        worker.succeed(entry, {"n": entry.message.config["n"]})
    orchestrate()

    [total] = worker.take().values()
    assert total.message.config["all"] == [{"n": n} for n in range(1000)]
    worker.succeed(total)
    orchestrate()
    execution.refresh_from_db()
    assert (execution.status, execution.total_tasks) == (Execution.Status.COMPLETED, 1002)


@pytest.mark.parametrize(
    ("items", "code"),
    [(["a", "b", "c"], "map_too_wide"), ({"not": "a list"}, "invalid_map_over"), (None, "invalid_map_over")],
)
def test_a_list_the_node_cannot_run_fails_it_with_a_dead_letter(
    streams, alice, worker, orchestrate, settings, items, code
):
    settings.MAP_MAX_ITEMS = 2
    execution = client.submit(mapped_dag(), name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {} if items is None else {"items": items})
    orchestrate()

    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    failed = TaskRun.objects.get(execution=execution, node_id="each")
    assert (failed.status, failed.error["code"]) == (TaskRun.Status.FAILED, code)
    assert DeadLetter.objects.get(execution_id=execution.pk).node_id == "each"
    assert worker.take() == {}


def test_a_failed_item_fails_the_run_and_a_retry_reruns_only_what_did_not_complete(
    streams, alice, operator, worker, orchestrate
):
    execution = client.submit(mapped_dag(), name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {"items": ["a", "b", "c"]})
    orchestrate()
    items = worker.take()
    worker.succeed(items["each[0]"], {"got": "a"})
    worker.fail(items["each[1]"], permanent=True)
    orchestrate()

    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert statuses(execution) == {
        "fetch": "COMPLETED",
        "each": "CANCELLED",
        "each[0]": "COMPLETED",
        "each[1]": "FAILED",
        "each[2]": "CANCELLED",
        "report": "CANCELLED",
    }
    letter = DeadLetter.objects.get(execution_id=execution.pk)
    assert (letter.node_id, letter.handler, letter.config["value"]) == ("each[1]", "input", "b")

    triage.dead_letter_retry(dead_letter_id=letter.pk, user=operator)
    again = worker.take()
    assert sorted(again) == ["each[1]", "each[2]"]
    assert again["each[1]"].message.config == {"value": "b", "position": 1, "tag": "{{ fetch.tag }}"}
    worker.succeed(again["each[1]"], {"got": "b"})
    worker.succeed(again["each[2]"], {"got": "c"})
    orchestrate()
    assert_report_completes(execution, worker, orchestrate, [{"got": "a"}, {"got": "b"}, {"got": "c"}])


def test_cancelling_mid_map_cancels_the_node_and_its_items(streams, alice, worker, orchestrate):
    execution = client.submit(mapped_dag(), name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {"items": [1, 2]})
    orchestrate()

    services.execution_cancel(execution=execution, user=alice)

    assert statuses(execution) == {
        "fetch": "COMPLETED",
        "each": "CANCELLED",
        "each[0]": "CANCELLED",
        "each[1]": "CANCELLED",
        "report": "CANCELLED",
    }


@pytest.mark.parametrize(
    ("map_over", "code"),
    [
        ("fetch.items", "invalid_map_over"),
        ("{{ fetch.items }} and more", "invalid_map_over"),
        ("{{ item }}", "invalid_map_over"),
        ("{{ secrets.LIST }}", "invalid_map_over"),
        ("{{ report.items }}", "invalid_template"),
    ],
)
def test_a_map_over_that_is_not_one_template_of_an_ancestor_is_refused_at_submit(alice, map_over, code):
    with pytest.raises(DagError) as refused:
        client.submit(mapped_dag(map_over), name="bad map", owner=alice)

    assert (refused.value.code, refused.value.node) == (code, "each")


def test_item_and_index_mean_nothing_outside_a_mapped_node(alice):
    dag = {"nodes": [{"id": "a", "handler": "input", "config": {"value": "{{ item }}"}}]}

    with pytest.raises(DagError, match="unknown node 'item'"):
        client.submit(dag, name="no map", owner=alice)


def test_the_dashboard_shows_the_items_of_a_mapped_node(streams, alice, worker, orchestrate):
    browser = Client()
    execution = client_submit_mapped(alice, worker, orchestrate)
    browser.force_login(alice)

    page = browser.get(f"/dashboard/executions/{execution.pk}").content.decode()
    item = browser.get(f"/dashboard/executions/{execution.pk}", {"node": "each[1]"}).content.decode()

    assert "each[0]" in page and "each[1]" in page
    detail = item[item.index('id="node-detail"') :]
    assert "&quot;value&quot;: &quot;b&quot;" in detail  # the item's resolved config
    assert '<span class="state COMPLETED">COMPLETED</span>' in detail


def client_submit_mapped(owner, worker, orchestrate) -> Execution:
    execution = client.submit(mapped_dag(), name="map", owner=owner)
    worker.succeed(worker.take()["fetch"], {"items": ["a", "b"]})
    orchestrate()
    for entry in worker.take().values():
        worker.succeed(entry)
    orchestrate()
    return execution


def test_one_item_and_an_item_retried_by_the_nodes_policy(streams, alice, worker, orchestrate, settings):
    settings.RETRY_BACKOFF_BASE = settings.RETRY_JITTER = 0.0
    dag = mapped_dag()
    dag["nodes"][1]["retry"] = {"max_attempts": 2}
    execution = client.submit(dag, name="map", owner=alice)
    worker.succeed(worker.take()["fetch"], {"items": ["only"]})
    orchestrate()

    worker.fail(worker.take()["each[0]"])  # transient: the node's policy allows a second attempt
    orchestrate()
    streams.move_due_delayed()
    again = worker.take()["each[0]"]
    assert (again.message.attempt, again.message.config["value"]) == (2, "only")
    worker.succeed(again, {"got": "only"})
    orchestrate()

    assert_report_completes(execution, worker, orchestrate, [{"got": "only"}])
