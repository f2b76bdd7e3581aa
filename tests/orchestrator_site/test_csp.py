"""Every HTML page carries a Content-Security-Policy: the dashboard the strict one (no inline
script or style), third-party pages (admin, browsable API, Swagger UI) inline styles only."""

import pytest

from orchestrator_site.csp import INLINE_STYLES, STRICT

pytestmark = pytest.mark.django_db


def test_the_dashboard_gets_the_strict_policy(client):
    response = client.get("/dashboard/login/")

    assert response["Content-Security-Policy"] == STRICT
    assert "'unsafe-inline'" not in STRICT
    assert "frame-ancestors 'none'" in STRICT


def test_the_admin_and_the_docs_may_use_inline_styles_but_no_inline_script(client, alice):
    client.force_login(alice)

    for path in ("/admin/login/", "/docs"):
        policy = client.get(path)["Content-Security-Policy"]
        assert policy == INLINE_STYLES
        assert "script-src 'self';" in policy


def test_the_docs_start_up_script_is_served_from_a_url_not_inline(client, alice):
    client.force_login(alice)

    page = client.get("/docs").content.decode()
    script = client.get("/docs?script=")

    assert "<script>" not in page
    assert script.status_code == 200
    assert b"SwaggerUIBundle" in script.content


def test_json_answers_carry_no_policy(alice_client):
    assert "Content-Security-Policy" not in alice_client.get("/api/v1/executions")
