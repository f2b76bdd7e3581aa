"""The `workflow` handler: a node runs another stored workflow as a child execution and
completes with the child's outputs; the child's failure or cancel fails the node; cancelling the
parent cancels the child. Real PostgreSQL (or SQLite), the real streams, a fake worker, the real
orchestrator and reaper, through both engine paths."""

import pytest
from django.test import Client

from dlq.models import DeadLetter
from workflows import client, services
from workflows.models import Execution, TaskRun
from workflows.reaper import Reaper, ReaperConfig
from workflows.selectors import execution_status_for
from workflows.streams import Streams

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

CHILD = {
    "nodes": [
        {"id": "double", "handler": "input", "config": {"n": "{{ params.n }}"}},
        {"id": "done", "handler": "input", "dependencies": ["double"]},
    ]
}


def parent_dag(workflow: str = "child") -> dict:
    return {
        "nodes": [
            {"id": "prep", "handler": "input"},
            {
                "id": "sub",
                "handler": "workflow",
                "dependencies": ["prep"],
                "config": {"workflow": workflow, "params": {"n": "{{ prep.n }}"}},
            },
            {
                "id": "after",
                "handler": "output",
                "dependencies": ["sub"],
                "config": {"child_said": "{{ sub.outputs.double.n }}", "child": "{{ sub.execution_id }}"},
            },
        ]
    }


@pytest.fixture
def child_workflow(alice):
    return client.submit(CHILD, name="child", owner=alice, start=False).workflow


def child_of(execution) -> Execution:
    return Execution.objects.get(parent_task__execution=execution)


def run_child(worker, orchestrate, *, fail: str | None = None) -> None:
    """Run the child's two tasks, one after the other, as its workers would."""
    for _ in CHILD["nodes"]:
        for node_id, entry in worker.take().items():
            if node_id == fail:
                worker.fail(entry, permanent=True)
            else:
                worker.succeed(entry, {"n": entry.message.config.get("n")})
        orchestrate()


def start_parent(alice, worker, orchestrate, workflow: str = "child") -> Execution:
    execution = client.submit(parent_dag(workflow), name="parent", owner=alice)
    worker.succeed(worker.take()["prep"], {"n": 21})
    orchestrate()
    return execution


def test_a_node_runs_a_child_execution_and_completes_with_its_outputs(
    streams, alice, child_workflow, worker, orchestrate
):
    parent = start_parent(alice, worker, orchestrate)

    child = child_of(parent)
    assert (child.workflow_id, child.owner_id, child.params) == (child_workflow.pk, alice.pk, {"n": 21})
    assert TaskRun.objects.get(execution=parent, node_id="sub").status == TaskRun.Status.RUNNING
    run_child(worker, orchestrate)

    child.refresh_from_db()
    assert child.status == Execution.Status.COMPLETED
    [after] = worker.take().values()
    assert after.message.config == {"child_said": 21, "child": str(child.pk)}
    sub = TaskRun.objects.get(execution=parent, node_id="sub")
    assert sub.output["outputs"]["double"] == {"n": 21} and sub.output["status"] == "COMPLETED"
    worker.succeed(after)
    orchestrate()
    parent.refresh_from_db()
    assert parent.status == Execution.Status.COMPLETED
    assert execution_status_for(alice, parent.pk)["children"] == [
        {"node_id": "sub", "execution_id": str(child.pk), "status": "COMPLETED"}
    ]
    assert execution_status_for(alice, child.pk)["parent"] == {
        "execution_id": str(parent.pk),
        "node_id": "sub",
    }


def test_a_child_that_fails_fails_the_node_for_good(streams, alice, child_workflow, worker, orchestrate):
    parent = start_parent(alice, worker, orchestrate)

    run_child(worker, orchestrate, fail="done")

    parent.refresh_from_db()
    assert parent.status == Execution.Status.FAILED
    sub = TaskRun.objects.get(execution=parent, node_id="sub")
    assert (sub.status, sub.error["code"]) == (TaskRun.Status.FAILED, "child_failed")
    assert str(child_of(parent).pk) in sub.error["message"]
    assert DeadLetter.objects.get(execution_id=parent.pk).node_id == "sub"


def test_cancelling_the_parent_cancels_the_child(streams, alice, child_workflow, worker, orchestrate):
    parent = start_parent(alice, worker, orchestrate)

    services.execution_cancel(execution=parent, user=alice)

    child = child_of(parent)
    assert child.status == Execution.Status.CANCELLED
    assert set(TaskRun.objects.filter(execution=child).values_list("status", flat=True)) == {"CANCELLED"}


def test_cancelling_the_child_fails_the_parents_node(streams, alice, child_workflow, worker, orchestrate):
    parent = start_parent(alice, worker, orchestrate)

    services.execution_cancel(execution=child_of(parent), user=alice)
    orchestrate()

    parent.refresh_from_db()
    assert parent.status == Execution.Status.FAILED
    assert TaskRun.objects.get(execution=parent, node_id="sub").error["code"] == "child_cancelled"


def test_an_unknown_workflow_fails_the_node(streams, alice, worker, orchestrate):
    parent = start_parent(alice, worker, orchestrate, workflow="no such workflow")

    parent.refresh_from_db()
    assert parent.status == Execution.Status.FAILED
    assert TaskRun.objects.get(execution=parent, node_id="sub").error["code"] == "workflow_not_found"
    assert not Execution.objects.filter(parent_task__execution=parent).exists()


def test_a_workflow_that_runs_itself_stops_at_the_depth_limit(streams, alice, worker, orchestrate, settings):
    settings.SUBWORKFLOW_MAX_DEPTH = 3
    loop = {"nodes": [{"id": "again", "handler": "workflow", "config": {"workflow": "loop"}}]}

    top = client.submit(loop, name="loop", owner=alice)
    orchestrate()

    top.refresh_from_db()
    assert top.status == Execution.Status.FAILED
    assert Execution.objects.filter(workflow=top.workflow).count() == 4  # the top and three levels
    assert DeadLetter.objects.filter(code="subworkflow_too_deep").count() == 1


def test_a_lost_completion_of_an_ended_child_is_published_again_by_the_reaper(
    streams, alice, child_workflow, worker, orchestrate, monkeypatch
):
    parent = start_parent(alice, worker, orchestrate)
    with monkeypatch.context() as crash:  # the process dies between the child's end and the publish
        crash.setattr(Streams, "publish_engine_completions", lambda self, completions: None)
        run_child(worker, orchestrate)
    assert TaskRun.objects.get(execution=parent, node_id="sub").status == TaskRun.Status.RUNNING

    reaper = Reaper(streams, consumer="reaper-1", config=ReaperConfig(republish_after_seconds=0))
    assert reaper.report_ended_subworkflows() == 1
    orchestrate()

    assert TaskRun.objects.get(execution=parent, node_id="sub").status == TaskRun.Status.COMPLETED
    assert reaper.report_ended_subworkflows() == 0


def test_a_root_that_runs_a_workflow_starts_its_child_at_trigger(streams, alice, child_workflow, worker):
    dag = {"nodes": [{"id": "sub", "handler": "workflow", "config": {"workflow": str(child_workflow.pk)}}]}

    parent = client.submit(dag, name="starts a child", owner=alice)

    assert child_of(parent).status == Execution.Status.RUNNING
    assert [entry.message.execution_id for entry in worker.take().values()] == [str(child_of(parent).pk)]


def test_the_api_and_dashboard_link_parent_and_child(
    streams, alice, alice_client, child_workflow, worker, orchestrate
):
    parent = start_parent(alice, worker, orchestrate)
    child = child_of(parent)
    browser = Client()
    browser.force_login(alice)

    parent_page = browser.get(f"/dashboard/executions/{parent.pk}").content.decode()
    child_page = browser.get(f"/dashboard/executions/{child.pk}").content.decode()

    assert f'href="/dashboard/executions/{child.pk}">sub</a>' in parent_page
    assert f'href="/dashboard/executions/{parent.pk}?node=sub" id="parent-execution"' in child_page
    assert alice_client.get(f"/api/v1/workflow/{child.pk}").json()["parent"] == {
        "execution_id": str(parent.pk),
        "node_id": "sub",
    }
    assert alice_client.get(f"/api/v1/workflow/{parent.pk}").json()["children"] == [
        {"node_id": "sub", "execution_id": str(child.pk), "status": "RUNNING"}
    ]


def test_another_users_workflow_is_not_found_without_the_permission_to_run_it(
    streams, alice, bob, worker, orchestrate
):
    bobs = client.submit(CHILD, name="child", owner=bob, start=False).workflow

    parent = start_parent(alice, worker, orchestrate, workflow=str(bobs.pk))

    parent.refresh_from_db()
    assert parent.status == Execution.Status.FAILED
    assert TaskRun.objects.get(execution=parent, node_id="sub").error["code"] == "workflow_not_found"
