"""Who may call the API: authentication by token or session, each user sees only their own work
and operators see everyone's; unknown paths and methods answer in the error shape."""

import uuid

import pytest
from rest_framework.test import APIClient

from tests.workflows.api_driver import (
    assert_error,
    reference_payload,
    status_of,
    submit,
)
from workflows.models import Execution

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_streams", "fast_password_hashing")]


ENDPOINTS = [
    ("post", "/api/v1/workflow"),
    ("post", "/api/v1/workflow/trigger/{execution}"),
    ("get", "/api/v1/workflow/{execution}"),
    ("delete", "/api/v1/workflow/{execution}"),
    ("get", "/api/v1/workflow/{execution}/results"),
    ("get", "/api/v1/executions"),
    ("get", "/api/v1/executions/{execution}"),
    ("get", "/api/v1/executions/{execution}/tasks"),
    ("get", "/api/v1/workflows"),
    ("get", "/api/v1/workflows/{workflow}"),
    ("post", "/api/v1/workflows/{workflow}/executions"),
]
ALICE_ONLY = [(method, url) for method, url in ENDPOINTS if "{" in url]


@pytest.fixture
def alices_execution(alice_client) -> dict:
    return submit(alice_client, reference_payload("linear_workflow"))


def call(client: APIClient, method: str, template: str, submitted: dict):
    url = template.format(execution=submitted["execution_id"], workflow=submitted["workflow_id"])
    if method == "post":
        return client.post(url, {}, format="json")
    return getattr(client, method)(url)


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
@pytest.mark.parametrize("credentials", [None, "Token not-a-real-token"], ids=["none", "bad_token"])
def test_api_requires_authentication(alices_execution, method, template, credentials):
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)

    response = call(client, method, template, alices_execution)

    assert_error(response, 401)
    assert Execution.objects.get(pk=alices_execution["execution_id"]).status == "PENDING"
    assert Execution.objects.count() == 1


@pytest.mark.parametrize(("method", "template"), ALICE_ONLY)
def test_other_users_cannot_see_or_touch_an_execution(
    bob_client, alices_execution, django_capture_on_commit_callbacks, streams, method, template
):
    with django_capture_on_commit_callbacks(execute=True):
        response = call(bob_client, method, template, alices_execution)

    assert_error(response, 404, "not_found")
    assert Execution.objects.get(pk=alices_execution["execution_id"]).status == "PENDING"
    assert Execution.objects.count() == 1
    assert streams.client.xlen(streams.tasks) == 0
    assert streams.cancelled_executions([alices_execution["execution_id"]]) == set()


def test_other_users_lists_leave_out_alices_work(bob_client, alices_execution):
    assert bob_client.get("/api/v1/executions").json()["count"] == 0
    assert bob_client.get("/api/v1/workflows").json()["count"] == 0
    assert (
        bob_client.get("/api/v1/executions", {"workflow": alices_execution["workflow_id"]}).json()["count"]
        == 0
    )


def test_staff_operator_sees_and_cancels_everyones_executions(
    alice_client, operator_client, alices_execution, cancel
):
    execution_id = alices_execution["execution_id"]

    assert status_of(operator_client, execution_id)["status"] == "PENDING"
    assert operator_client.get(f"/api/v1/executions/{execution_id}/tasks").json()["count"] == 3
    listed = operator_client.get("/api/v1/executions").json()["results"]
    assert [e["execution_id"] for e in listed] == [execution_id]
    workflows = operator_client.get("/api/v1/workflows").json()["results"]
    assert [w["id"] for w in workflows] == [alices_execution["workflow_id"]]
    assert cancel(execution_id, client=operator_client).status_code == 200
    assert status_of(alice_client, execution_id)["status"] == "CANCELLED"


def test_session_authentication_works(alice, alices_execution):
    client = APIClient()
    client.force_login(alice)

    assert status_of(client, alices_execution["execution_id"])["status"] == "PENDING"
    assert client.get("/api/v1/executions").json()["count"] == 1
    assert submit(client, reference_payload("parallel_fanout"))["execution_id"]


def test_unknown_api_path_and_wrong_method_use_the_error_shape(alice_client):
    assert_error(alice_client.get("/api/v1/no-such-thing"), 404)
    assert_error(alice_client.get("/api/v1/workflow"), 405)
    assert_error(alice_client.put(f"/api/v1/workflow/{uuid.uuid4()}", {}, format="json"), 405)
