"""What the engine reports about its own health: /health and the circuit states."""

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_streams", "fast_password_hashing")]


def test_health_is_open_and_reports_its_checks(streams):
    response = APIClient().get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ok"
    assert {"tasks", "completions"} <= set(body["checks"]["streams"])


def test_circuit_states_are_visible_to_every_signed_in_user(alice_client, streams):
    streams.client.hset(
        streams.circuit_key("call_llm"), mapping={"state": "open", "failures": "2", "until": "2000000000"}
    )

    response = alice_client.get("/api/v1/admin/circuits")

    assert response.status_code == 200, response.content
    assert response.json()["circuits"]["call_llm"] == {
        "state": "open",
        "consecutive_failures": 2,
        "retry_after": 2000000000.0,
    }
    assert APIClient().get("/api/v1/admin/circuits").status_code == 401
