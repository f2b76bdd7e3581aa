"""/metrics is for staff and Prometheus (bearer METRICS_TOKEN); the API schema and /docs are for
signed-in users; each can be opened to everyone by a setting."""

import pytest

from tests.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = "scrape-secret-1"
    return settings.METRICS_TOKEN


def test_metrics_refuse_anonymous_callers_and_ordinary_users(client, alice, metrics_token):
    anonymous = client.get("/metrics")
    client.force_login(alice)
    ordinary = client.get("/metrics")

    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"workflow_" not in anonymous.content
    assert ordinary.status_code == 401


@pytest.mark.parametrize("presented", ["Bearer wrong", "Bearer scrape-secret-", "Token scrape-secret-1", ""])
def test_metrics_refuse_a_wrong_token(client, metrics_token, presented):
    assert client.get("/metrics", HTTP_AUTHORIZATION=presented).status_code == 401


def test_metrics_answer_prometheus_with_the_token_and_staff_sessions(client, operator, metrics_token):
    scraped = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    client.force_login(operator)
    staff = client.get("/metrics")

    assert scraped.status_code == 200
    assert b"django_http_requests_total" in scraped.content
    assert staff.status_code == 200


def test_no_token_configured_means_no_token_is_accepted(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_metrics_public_opens_them(client, settings):
    settings.METRICS_PUBLIC = True

    assert client.get("/metrics").status_code == 200


def test_the_schema_needs_an_authenticated_caller(client, alice):
    assert client.get("/api/schema").status_code in {401, 403}
    assert token_client(alice).get("/api/schema").status_code == 200


def test_docs_send_a_browser_that_is_not_signed_in_to_the_login_page(client, alice):
    response = client.get("/docs")
    client.force_login(alice)

    assert response.status_code == 302
    assert "next=/docs" in response["Location"]
    assert client.get("/docs").status_code == 200


def test_api_docs_public_opens_the_schema_and_docs(client, settings):
    settings.API_DOCS_PUBLIC = True

    assert client.get("/api/schema").status_code == 200
    assert client.get("/docs").status_code == 200
