"""The real handlers inside the engine: a real Worker (threads, Redis scripts) and the
orchestrator, in this process, against scripted servers on loopback. Retries of 5xx with the
server counting hits, Retry-After honoured by the schedule, circuit breakers per host (and none
for local handlers), rate limits that only tighten, and secrets that reach the handler and
nothing else: not the database, the API, the dashboard, the logs, the dead letters or Redis."""

import json
import time
from urllib.parse import quote, quote_plus

import pytest
from django.test import Client
from django.urls import reverse

from dlq.models import DeadLetter
from tests.local_servers import Reply, ScriptedServer
from tests.polling import poll_until
from workflows.messages import TaskMessage, decode_task
from workflows.models import Execution, TaskAttempt, TaskRun
from workflows.worker import Worker, WorkerConfig

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.embedded,
    pytest.mark.usefixtures("both_engine_paths"),
]

SECRET = "s3cr3t/Value+xyz-42"
SECRET_SPELLINGS = {SECRET, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET)}


@pytest.fixture(autouse=True)
def online(settings):
    settings.HANDLERS_OFFLINE = False
    settings.OUTBOUND_ALLOWLIST = ["127.0.0.2", "127.0.0.3"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RETRY_JITTER = 0.0


@pytest.fixture
def server():
    scripted = ScriptedServer("127.0.0.2")
    yield scripted
    scripted.close()


def in_process_worker(streams, **config) -> Worker:
    """A worker of this process that knows one secret."""
    return Worker(
        streams,
        consumer="worker-test",
        config=WorkerConfig(concurrency=4, block_ms=50, secrets={"API_TOKEN": SECRET}, **config),
    )


@pytest.fixture
def real_worker(streams):
    worker = in_process_worker(streams)
    yield worker
    worker.close()


def make_due(streams) -> None:
    for member in streams.client.zrange(streams.delayed, 0, -1):
        streams.client.zadd(streams.delayed, {member: time.time() - 1})
    streams.move_due_delayed()


def settle(worker: Worker) -> None:
    poll_until(lambda: not worker.running, what="the worker to report its tasks", timeout=30)


def drive(streams, worker: Worker, orchestrate, execution: Execution, *, due=make_due) -> Execution:
    """Run the engine until the execution ends: work, report, orchestrate, let retries fall due."""
    for _ in range(40):
        worker.step()
        settle(worker)
        orchestrate()
        execution.refresh_from_db()
        if execution.status not in {Execution.Status.PENDING, Execution.Status.RUNNING}:
            return execution
        due(streams)
    pytest.fail(f"execution still {execution.status}")


def fetch_node(url: str, **fields) -> dict:
    return {"id": "fetch", "handler": "call_external_service", "config": {"url": url}, **fields}


def workflow(*nodes: dict) -> dict:
    return {"name": "real handlers", "dag": {"nodes": list(nodes)}}


# --- retries ---------------------------------------------------------------------------------


def test_a_5xx_is_retried_with_the_nodes_policy_until_it_succeeds(
    streams, real_worker, orchestrate, start_workflow, server
):
    def flaky(hit):
        return Reply(503, body="busy") if len(server.hits_on("/flaky")) <= 2 else Reply(body={"ok": True})

    server.route("/flaky", flaky)
    execution = start_workflow(
        workflow(fetch_node(server.url("/flaky"), retry={"max_attempts": 3, "backoff_base": 0.01}))
    )

    execution = drive(streams, real_worker, orchestrate, execution)

    assert execution.status == Execution.Status.COMPLETED
    assert len(server.hits_on("/flaky")) == 3
    run = TaskRun.objects.get(execution=execution, node_id="fetch")
    assert (run.attempt, run.output["data"]) == (3, {"ok": True})
    assert [a.error["code"] for a in TaskAttempt.objects.filter(task_run=run)] == ["http_503", "http_503"]
    # Every attempt sent the same idempotency key: the server can tell it is one operation.
    assert {hit.headers["Idempotency-Key"] for hit in server.hits} == {f"{execution.id}:fetch"}


def test_a_4xx_is_not_retried(streams, real_worker, orchestrate, start_workflow, server):
    server.route("/missing", Reply(404, body="nope"))
    execution = start_workflow(workflow(fetch_node(server.url("/missing"), retry={"max_attempts": 5})))

    execution = drive(streams, real_worker, orchestrate, execution)

    assert execution.status == Execution.Status.FAILED
    assert len(server.hits) == 1
    assert DeadLetter.objects.get(execution=execution).code == "http_404"


def test_a_429_retry_is_scheduled_no_earlier_than_its_retry_after(
    streams, real_worker, orchestrate, start_workflow, server
):
    def limited(hit):
        first = len(server.hits_on("/limited")) == 1
        return Reply(429, headers={"Retry-After": "30"}) if first else Reply(body="ok")

    server.route("/limited", limited)
    execution = start_workflow(
        workflow(fetch_node(server.url("/limited"), retry={"max_attempts": 2, "backoff_base": 0.01}))
    )
    real_worker.step()
    settle(real_worker)
    before = time.time()
    orchestrate()

    [(_, due)] = streams.client.zrange(streams.delayed, 0, -1, withscores=True)
    assert before + 29 <= due <= time.time() + 30  # the backoff alone would be 0.01 s
    execution = drive(streams, real_worker, orchestrate, execution)
    assert execution.status == Execution.Status.COMPLETED
    assert len(server.hits) == 2


# --- circuits ----------------------------------------------------------------------------------


def task(task_id: int, handler: str, config: dict) -> TaskMessage:
    return TaskMessage(
        task_id=task_id,
        execution_id="00000000-0000-0000-0000-0000000000c1",
        node_id=f"n{task_id}",
        handler=handler,
        attempt=1,
        config=config,
    )


def test_a_failing_host_opens_its_own_circuit_and_local_handlers_have_none(streams, server):
    real_worker = in_process_worker(streams, circuit_failure_threshold=2)
    other = ScriptedServer("127.0.0.3")
    try:
        server.route("/down", Reply(503))
        other.route("/up", Reply(body="fine"))
        down = {"url": server.url("/down")}
        streams.publish_tasks(
            [task(1, "call_external_service", down), task(2, "call_external_service", down)]
        )
        streams.publish_tasks(
            [task(10 + n, "input", {"simulate_failure": True}) for n in range(6)]  # cannot open anything
        )
        for _ in range(3):
            real_worker.step()
            settle(real_worker)

        circuits = streams.circuits()
        assert circuits["call_external_service:127.0.0.2"]["state"] == "open"
        assert "input" not in circuits and "call_external_service" not in circuits

        streams.publish_tasks(
            [
                task(20, "call_external_service", {"url": server.url("/down")}),
                task(21, "call_external_service", {"url": other.url("/up")}),
                task(22, "input", {}),
            ]
        )
        real_worker.step()
        settle(real_worker)

        assert len(server.hits) == 2  # the third call to the open host waits in the delayed set
        assert len(other.hits) == 1
        assert streams.client.zscore(streams.delayed, "20:1") is not None
        done = {
            json.loads(fields[b"body"])["task_id"] for _, fields in streams.client.xrange(streams.completions)
        }
        assert {21, 22} <= done and 20 not in done
    finally:
        other.close()


# --- rate limits -------------------------------------------------------------------------------


def test_a_node_rate_limit_only_tightens_the_operators(streams, start_workflow, settings):
    settings.RATE_LIMITS = {"input": "10/s"}
    start_workflow(
        workflow(
            {"id": "looser", "handler": "input", "config": {"rate_limit": "100/s"}},
            {"id": "stricter", "handler": "input", "config": {"rate_limit": "5/m"}},
            {"id": "unset", "handler": "input"},
            {"id": "other_handler", "handler": "decision", "config": {"rate_limit": "2/s"}},
        )
    )

    limits = {
        task.node_id: task.rate_limit
        for task in (decode_task(fields) for _, fields in streams.client.xrange(streams.tasks))
    }

    assert limits == {"looser": "10/s", "stricter": "5/m", "unset": "10/s", "other_handler": "2/s"}


# --- secrets -----------------------------------------------------------------------------------


def test_a_secret_reaches_the_handler_and_no_other_surface(
    streams,
    real_worker,
    orchestrate,
    start_workflow,
    server,
    alice,
    operator,
    alice_client,
    operator_client,
    capfd,
    caplog,
):
    def echo(hit):
        return Reply(body={"authorization": hit.headers["Authorization"], "path": hit.path})

    server.route("/echo", echo)
    server.route("/missing", lambda hit: Reply(404, body=f"no page at {hit.path}"))
    reference = "{{ secrets.API_TOKEN }}"
    succeeding = start_workflow(
        workflow(
            {
                "id": "call",
                "handler": "call_external_service",
                "config": {
                    "url": server.url(f"/echo?key={reference}"),
                    "headers": {"Authorization": f"Bearer {reference}"},
                },
            },
            {"id": "show", "handler": "input", "config": {"token": reference, "note": "kept"}},
            {
                "id": "after",
                "handler": "transform",
                "dependencies": ["call"],
                "config": {"output": {"seen": "{{ call.data.authorization }}"}},
            },
        )
    )
    failing = start_workflow(
        workflow(fetch_node(server.url(f"/missing?key={reference}"), retry={"max_attempts": 1}))
    )

    drive(streams, real_worker, orchestrate, succeeding)
    drive(streams, real_worker, orchestrate, failing)

    # The handler had the value: the server received it.
    [call] = server.hits_on("/echo")
    assert call.headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET in call.path or quote(SECRET, safe="/") in call.path
    succeeding.refresh_from_db()
    failing.refresh_from_db()
    assert (succeeding.status, failing.status) == ("COMPLETED", "FAILED")
    outputs = dict(TaskRun.objects.filter(execution=succeeding).values_list("node_id", "output"))
    assert outputs["show"] == {"token": "[secret]", "note": "kept"}
    assert outputs["call"]["data"]["authorization"] == "Bearer [secret]"
    assert outputs["after"] == {"seen": "Bearer [secret]"}
    stored = TaskRun.objects.get(execution=succeeding, node_id="call").config
    assert stored["headers"] == {"Authorization": "Bearer {{ secrets.API_TOKEN }}"}

    ids = [succeeding.id, failing.id]
    surfaces = {
        "task runs": list(TaskRun.objects.filter(execution__in=ids).values()),
        "attempts": list(TaskAttempt.objects.filter(task_run__execution__in=ids).values()),
        "executions": list(Execution.objects.filter(id__in=ids).values()),
        "dead letters": list(DeadLetter.objects.filter(execution__in=ids).values()),
    }
    assert surfaces["dead letters"] and "[secret]" in surfaces["dead letters"][0]["message"]
    for execution_id in ids:
        for path in ("workflow/{}", "workflow/{}/results", "executions/{}/tasks"):
            response = alice_client.get("/api/v1/" + path.format(execution_id))
            assert response.status_code == 200
            surfaces[f"API {path}"] = response.content.decode()
        surfaces[f"API dlq {execution_id}"] = operator_client.get(
            f"/api/v1/admin/dlq?execution={execution_id}"
        ).content.decode()
        surfaces[f"dashboard {execution_id}"] = (
            logged_in(alice).get(reverse("dashboard-execution", args=[execution_id])).content.decode()
        )
        surfaces[f"dashboard live {execution_id}"] = (
            logged_in(alice).get(reverse("dashboard-execution-live", args=[execution_id])).content.decode()
        )
    surfaces["dashboard dlq"] = logged_in(operator).get(reverse("dashboard-dlq")).content.decode()
    surfaces["admin"] = (
        logged_in(operator)
        .get(f"/admin/dlq/deadletter/{surfaces['dead letters'][0]['id']}/change/")
        .content.decode()
    )
    captured = capfd.readouterr()
    surfaces["logs"] = captured.out + captured.err + caplog.text
    surfaces["redis"] = redis_dump(streams)

    for surface, content in surfaces.items():
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        for spelling in SECRET_SPELLINGS:
            assert spelling not in text, f"the secret is in {surface}"
    assert "task_failed" in surfaces["logs"]  # the failure was logged, scrubbed


def test_an_unknown_secret_fails_the_task_for_good(streams, real_worker, orchestrate, start_workflow):
    execution = start_workflow(
        workflow({"id": "show", "handler": "input", "config": {"token": "{{ secrets.NOT_SET }}"}})
    )

    execution = drive(streams, real_worker, orchestrate, execution)

    assert execution.status == Execution.Status.FAILED
    error = TaskRun.objects.get(execution=execution).error
    assert (error["code"], error["permanent"]) == ("secret_missing", True)
    assert "WORKFLOW_SECRET_NOT_SET" in error["message"]


def test_strict_templates_keep_secret_references_for_the_worker(
    streams, real_worker, orchestrate, start_workflow
):
    payload = workflow(
        {"id": "a", "handler": "input", "config": {"x": 1}},
        {
            "id": "b",
            "handler": "input",
            "dependencies": ["a"],
            "config": {"v": "{{ a.x }}-{{ secrets.API_TOKEN }}"},
        },
    )
    execution = start_workflow({**payload, "strict_templates": True})

    execution = drive(streams, real_worker, orchestrate, execution)

    assert execution.status == Execution.Status.COMPLETED
    run = TaskRun.objects.get(execution=execution, node_id="b")
    assert run.config == {"v": "1-{{ secrets.API_TOKEN }}"}
    assert run.output == {"v": "1-[secret]"}


def logged_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def redis_dump(streams) -> str:
    """Every value under this test's prefix, as text."""
    client, parts = streams.client, []
    for key in client.scan_iter(f"{streams.prefix}:*"):
        kind = client.type(key).decode()
        if kind == "stream":
            parts.append(repr(client.xrange(key)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1)))
        elif kind == "string":
            parts.append(repr(client.get(key)))
    return "\n".join(parts)
