"""`Idempotency-Key` on submit, trigger, new execution, re-run and re-trigger: a retry with the same
key and request gets the first answer and creates nothing; the same key with another request is
422; concurrent twins create one thing; the record is written with what it answers for."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import token_client
from workflows import services
from workflows.models import Execution, IdempotencyRecord, Workflow

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

ONE_NODE = {"name": "once", "dag": {"nodes": [{"id": "a", "handler": "input"}]}}


@pytest.fixture(autouse=True)
def own_streams(streams):
    return streams


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def post(client, path: str, body: dict | None = None, *, key: str | None = None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, body if body is not None else {}, format="json", **headers)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    return error


# --- submit ----------------------------------------------------------------------------------


def test_a_retried_submit_gets_the_first_answer_and_creates_nothing(alice_client):
    first = post(alice_client, "/api/v1/workflow", ONE_NODE, key="submit-1")
    retried = post(alice_client, "/api/v1/workflow", ONE_NODE, key="submit-1")

    assert (first.status_code, retried.status_code) == (201, 201)
    assert retried.json() == first.json()
    assert retried["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Workflow.objects.count() == 1 and Execution.objects.count() == 1


def test_the_same_key_with_another_body_is_422(alice_client):
    post(alice_client, "/api/v1/workflow", ONE_NODE, key="submit-2")

    reused = post(alice_client, "/api/v1/workflow", {**ONE_NODE, "name": "other"}, key="submit-2")

    error = assert_error(reused, 422, "idempotency_key_reused")
    assert "submit-2" in error["message"]
    assert Execution.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_422(alice_client):
    submitted = post(alice_client, "/api/v1/workflow", ONE_NODE, key="shared").json()

    reused = post(alice_client, f"/api/v1/workflow/trigger/{submitted['execution_id']}", key="shared")

    assert_error(reused, 422, "idempotency_key_reused")
    assert Execution.objects.get().status == Execution.Status.PENDING


def test_keys_belong_to_their_user(alice_client, bob_client):
    alices = post(alice_client, "/api/v1/workflow", ONE_NODE, key="mine").json()
    bobs = post(bob_client, "/api/v1/workflow", ONE_NODE, key="mine")

    assert bobs.status_code == 201 and not bobs.has_header("Idempotent-Replayed")
    assert bobs.json()["execution_id"] != alices["execution_id"]


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "clé", "tab\there", "new\x01line", "\x7f", " ", " lead", "trail "],
    ids=["empty", "256", "non-ascii", "tab", "control", "del", "space", "leading-space", "trailing-space"],
)
def test_a_key_must_be_1_to_255_printable_ascii_characters(alice_client, key):
    """No space at either end either: proxies may strip it, and the retry would carry another key."""
    refused = post(alice_client, "/api/v1/workflow", ONE_NODE, key=key)

    assert_error(refused, 400, "invalid_idempotency_key")
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    "key", ["x" * 255, "a b", '~!@#$%^&*()_+ {}|:"<>?'], ids=["255", "inner-space", "punctuation"]
)
def test_printable_ascii_keys_up_to_255_are_taken(alice_client, key):
    assert post(alice_client, "/api/v1/workflow", ONE_NODE, key=key).status_code == 201
    assert IdempotencyRecord.objects.get().key == key


def test_without_the_header_nothing_is_recorded_or_queried(alice_client):
    with CaptureQueriesContext(connection) as queries:
        assert post(alice_client, "/api/v1/workflow", ONE_NODE).status_code == 201

    assert not IdempotencyRecord.objects.exists()
    assert not [q for q in queries.captured_queries if IdempotencyRecord._meta.db_table in q["sql"]]


def test_a_refused_request_is_not_remembered(alice_client):
    invalid = {"name": "bad", "dag": {"nodes": [{"id": "a", "handler": "no-such-handler"}]}}
    assert post(alice_client, "/api/v1/workflow", invalid, key="fix-and-retry").status_code == 400

    retried = post(alice_client, "/api/v1/workflow", ONE_NODE, key="fix-and-retry")

    assert retried.status_code == 201 and not retried.has_header("Idempotent-Replayed")
    assert Execution.objects.count() == 1


def test_the_record_is_written_in_the_transaction_of_what_it_answers_for(alice_client, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("the process died while recording the answer")

    monkeypatch.setattr(IdempotencyRecord, "save", crash)

    with pytest.raises(RuntimeError):
        post(alice_client, "/api/v1/workflow", ONE_NODE, key="crash")

    assert not Workflow.objects.exists() and not Execution.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_an_expired_key_runs_again_and_expired_records_go(alice_client, alice, settings):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    first = post(alice_client, "/api/v1/workflow", ONE_NODE, key="old").json()
    post(alice_client, "/api/v1/workflow", ONE_NODE, key="also-old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = post(alice_client, "/api/v1/workflow", ONE_NODE, key="old")

    assert again.status_code == 201 and again.json()["execution_id"] != first["execution_id"]
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["old"]


# --- trigger, new execution, re-run, re-trigger ----------------------------------------------


def test_a_retried_trigger_gets_its_first_answer_not_a_conflict(alice_client):
    execution_id = post(alice_client, "/api/v1/workflow", ONE_NODE).json()["execution_id"]
    path = f"/api/v1/workflow/trigger/{execution_id}"

    first = post(alice_client, path, {"params": {"n": 1}}, key="go")
    retried = post(alice_client, path, {"params": {"n": 1}}, key="go")
    unkeyed = post(alice_client, path, {"params": {"n": 1}})

    assert (first.status_code, retried.status_code) == (202, 202)
    assert retried.json() == first.json() and retried["Idempotent-Replayed"] == "true"
    assert_error(unkeyed, 409, "not_pending")
    assert_error(post(alice_client, path, {"params": {"n": 2}}, key="go"), 422, "idempotency_key_reused")


def test_a_retried_new_execution_or_retrigger_creates_one_execution(alice_client):
    submitted = post(alice_client, "/api/v1/workflow", ONE_NODE).json()
    new_execution = f"/api/v1/workflows/{submitted['workflow_id']}/executions"
    retrigger = f"/api/v1/workflow/{submitted['execution_id']}/retrigger"

    created = [post(alice_client, new_execution, key="again").json() for _ in range(2)]
    retriggered = [post(alice_client, retrigger, {"params": {}}, key="retrigger").json() for _ in range(2)]

    assert created[0] == created[1] and retriggered[0] == retriggered[1]
    assert Execution.objects.count() == 3  # the submitted one, one new, one re-triggered


def test_a_retried_rerun_replays_its_answer(alice_client):
    execution_id = post(alice_client, "/api/v1/workflow", ONE_NODE).json()["execution_id"]
    post(alice_client, f"/api/v1/workflow/trigger/{execution_id}")
    alice_client.delete(f"/api/v1/workflow/{execution_id}")
    path = f"/api/v1/workflow/{execution_id}/rerun"

    first = post(alice_client, path, key="rerun")
    retried = post(alice_client, path, key="rerun")

    assert (first.status_code, retried.status_code) == (202, 202)
    assert retried.json() == first.json() and retried["Idempotent-Replayed"] == "true"


def test_the_schema_documents_the_header(operator_client):
    schema = operator_client.get("/api/schema?format=json").json()

    for path in ("/api/v1/workflow", "/api/v1/workflow/trigger/{execution_id}"):
        names = [
            p["name"] for p in schema["paths"][path]["post"].get("parameters", []) if p["in"] == "header"
        ]
        assert names == ["Idempotency-Key"], path


# --- concurrent twins ------------------------------------------------------------------------


def hold_first_call(monkeypatch, owner, name: str) -> tuple[threading.Event, threading.Event, list]:
    """Replace `owner.name` so that its first call signals `inside` and waits for `release`."""
    inside, release, calls = threading.Event(), threading.Event(), []
    original = getattr(owner, name)

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            assert release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)
    return inside, release, calls


def in_thread(answers: dict, name: str, call) -> threading.Thread:
    def run():
        try:
            answers[name] = call()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", ["submit", "trigger"])
def test_concurrent_twins_make_one_and_both_get_its_answer(alice, monkeypatch, endpoint):
    if endpoint == "submit":
        path, body = "/api/v1/workflow", ONE_NODE
        inside, release, calls = hold_first_call(monkeypatch, services, "workflow_submit")
    else:
        execution = services.workflow_submit(payload=ONE_NODE, owner=alice)
        path, body = f"/api/v1/workflow/trigger/{execution.id}", {"params": {}}
        inside, release, calls = hold_first_call(monkeypatch, services, "execution_trigger")
    answers: dict = {}

    first_thread = in_thread(answers, "first", lambda: post(token_client(alice), path, body, key="twin"))
    assert inside.wait(10)
    twin_thread = in_thread(answers, "twin", lambda: post(token_client(alice), path, body, key="twin"))
    time.sleep(0.5)  # the twin is waiting on the key's index
    assert not answers
    release.set()
    first_thread.join(10)
    twin_thread.join(10)

    assert len(calls) == 1
    first, twin = answers["first"], answers["twin"]
    assert first.status_code == twin.status_code == (201 if endpoint == "submit" else 202)
    assert twin.json() == first.json()
    assert (first.has_header("Idempotent-Replayed"), twin["Idempotent-Replayed"]) == (False, "true")
    assert Execution.objects.count() == 1
