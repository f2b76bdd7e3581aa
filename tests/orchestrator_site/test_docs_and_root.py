"""/docs works offline (Swagger UI from the pinned sidecar, served by whitenoise), the schema
answers with and without a trailing slash, and /api/v1/ lists every endpoint."""

import uuid
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.urls import URLPattern, resolve

from workflows.api import urls as api_urls

pytestmark = pytest.mark.django_db

SIDECAR_ASSETS = [
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    "drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
]


class AssetCollector(HTMLParser):
    """The URLs a page makes the browser load: <script src> and <link href>."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def page_assets(html: str) -> list[str]:
    collector = AssetCollector()
    collector.feed(html)
    return collector.urls


def body_of(response) -> bytes:
    """Whitenoise streams static files; other responses have plain content."""
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def signed_in(client, alice):
    """A browser signed in as an ordinary user: the docs and the schema need a sign-in."""
    client.force_login(alice)
    return client


def test_docs_loads_only_same_origin_assets_and_each_one_answers(signed_in):
    client = signed_in
    response = client.get("/docs")
    assert response.status_code == 200

    assets = page_assets(response.content.decode())
    for url in assets:
        parts = urlsplit(url)
        # Same origin: a path, no scheme and no host (which "//cdn..." would have).
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    assert {f"/static/{asset}" for asset in SIDECAR_ASSETS} <= set(assets)
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert body_of(asset), url


def test_docs_page_points_swagger_ui_at_the_local_schema(signed_in):
    # The start-up script is served from ?script= (no inline script under the page's CSP).
    html = signed_in.get("/docs").content.decode() + signed_in.get("/docs?script=").content.decode()

    assert 'url: "/api/schema"' in html
    assert "cdn" not in html.lower()


def test_collectstatic_gathers_the_swagger_ui_assets(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"

    call_command("collectstatic", interactive=False, verbosity=0)

    for asset in SIDECAR_ASSETS:
        assert (settings.STATIC_ROOT / asset).is_file(), asset


@pytest.mark.parametrize("path", ["/api/schema", "/api/schema/"])
def test_schema_answers_with_and_without_trailing_slash(signed_in, path):
    response = signed_in.get(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Workflow orchestrator API"
    assert "/api/v1/workflow" in schema["paths"]


def named_routes() -> list[str]:
    return [p.name for p in api_urls.urlpatterns if isinstance(p, URLPattern) and p.name]


def test_api_root_lists_every_endpoint_with_its_absolute_url(alice_client):
    response = alice_client.get("/api/v1/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    links = response.json()
    assert list(links) == [*named_routes(), "schema", "docs"]
    assert links["workflow-submit"] == "http://testserver/api/v1/workflow"
    assert links["workflow-trigger"] == "http://testserver/api/v1/workflow/trigger/{execution_id}"
    assert links["execution-tasks"] == "http://testserver/api/v1/executions/{id}/tasks"
    assert links["dead-letter-retry"] == "http://testserver/api/v1/admin/dlq/{id}/retry"
    assert links["schema"] == "http://testserver/api/schema"
    assert links["docs"] == "http://testserver/docs"


def test_api_root_urls_lead_to_the_routes_they_are_named_after(client):
    links = client.get("/api/v1/").json()

    for name in named_routes():
        path = urlsplit(links[name]).path.replace("{execution_id}", str(uuid.uuid4()))
        path = path.replace("{id}", "1")
        assert resolve(path).url_name == name, (name, path)


def test_api_root_is_open_but_what_it_lists_is_not(client):
    root = client.get("/api/v1/")
    listed = client.get(urlsplit(root.json()["execution-list"]).path)

    assert root.status_code == 200
    assert listed.status_code == 401


def test_api_root_in_a_browser_is_the_browsable_api_with_a_login_link(client):
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Workflow orchestrator API" in html
    assert 'href="http://testserver/api/v1/workflow"' in html
    assert "/api-auth/login/?next=/api/v1/" in html
    assert client.get("/api-auth/login/?next=/api/v1/").status_code == 200
