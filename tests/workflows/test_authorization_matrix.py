"""The authorization matrix (issue 11): every endpoint and page, as seven kinds of caller, answers
exactly the status it should, and a refused request changes nothing while an allowed one does.

The callers: nobody signed in; the owner of the objects (alice); another user (bob); a staff user
with no permissions (staff status opens the admin's door and nothing else); a non-staff user with
the read-only permissions (`viewer`: sees everything, may change nothing of others'); a staff
member of the operators group; a superuser. The rules are in workflows/permissions.py.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from dlq.models import DeadLetter
from tests.conftest import token_client
from tests.reference_payloads import load as reference_payload
from tests.workflows.scenarios import fail_permanently, started
from workflows import services
from workflows.models import Execution

pytestmark = pytest.mark.django_db

LOGIN = "login"  # a page's answer to a caller not signed in (or not staff, for the admin): 302 to a login

ACTORS = ("anonymous", "owner", "other", "staff", "viewer", "operator", "superuser")
VIEWER_PERMISSIONS = ("view_execution", "view_workflow", "view_deadletter")


@dataclass(frozen=True)
class Objects:
    """alice's objects the matrix acts on."""

    running: Execution
    failed: Execution
    pending: Execution
    letter: DeadLetter

    def url(self, template: str) -> str:
        """`template` with {running}, {failed}, {pending}, {workflow} and {letter} filled in."""
        names = {
            "running": self.running.pk,
            "failed": self.failed.pk,
            "pending": self.pending.pk,
            "workflow": self.running.workflow_id,
            "letter": self.letter.pk,
        }
        for name, value in names.items():
            template = template.replace(f"{{{name}}}", str(value))
        return template


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def objects(alice, streams) -> Objects:
    failed = started(alice, "linear_workflow")
    letter = fail_permanently(failed, "start")
    pending = services.workflow_submit(payload=reference_payload("linear_workflow"), owner=alice)
    return Objects(started(alice, "linear_workflow"), failed, pending, letter)


@pytest.fixture
def caller(request, alice, bob, operator, django_user_model):
    """The user acting, by name (None: not signed in)."""
    if request.param == "viewer":
        viewer = django_user_model.objects.create_user("vera", password="vera-password-1")
        viewer.user_permissions.add(*Permission.objects.filter(codename__in=VIEWER_PERMISSIONS))
        return viewer
    return {
        "anonymous": lambda: None,
        "owner": lambda: alice,
        "other": lambda: bob,
        "staff": lambda: django_user_model.objects.create_user("stan", password="x", is_staff=True),
        "operator": lambda: operator,
        "superuser": lambda: django_user_model.objects.create_superuser("root", password="x"),
    }[request.param]()


def snapshot() -> tuple:
    """Everything a request in the matrix could change."""
    return (
        sorted(Execution.objects.values_list("id", "status")),
        sorted(DeadLetter.objects.values_list("id", "status")),
    )


# (method, url, body, expected status for each of ACTORS). Bodies go as JSON to the API and as a
# form to the pages.
API = [
    ("get", "/api/v1/workflow/{running}", None, (401, 200, 404, 404, 200, 200, 200)),
    ("get", "/api/v1/workflow/{running}/results", None, (401, 200, 404, 404, 200, 200, 200)),
    ("get", "/api/v1/executions", None, (401, 200, 200, 200, 200, 200, 200)),
    ("get", "/api/v1/executions/{running}", None, (401, 200, 404, 404, 200, 200, 200)),
    ("get", "/api/v1/executions/{running}/tasks", None, (401, 200, 404, 404, 200, 200, 200)),
    ("get", "/api/v1/workflows", None, (401, 200, 200, 200, 200, 200, 200)),
    ("get", "/api/v1/workflows/{workflow}", None, (401, 200, 404, 404, 200, 200, 200)),
    ("post", "/api/v1/workflow", reference_payload("linear_workflow"), (401, 201, 201, 201, 201, 201, 201)),
    ("post", "/api/v1/workflow/trigger/{pending}", {}, (401, 202, 404, 404, 403, 202, 202)),
    ("delete", "/api/v1/workflow/{running}", None, (401, 200, 404, 404, 403, 200, 200)),
    ("post", "/api/v1/workflow/{failed}/rerun", None, (401, 202, 404, 404, 403, 202, 202)),
    ("post", "/api/v1/workflow/{failed}/retrigger", {"params": {}}, (401, 202, 404, 404, 403, 202, 202)),
    ("post", "/api/v1/workflows/{workflow}/executions", None, (401, 201, 404, 404, 403, 201, 201)),
    ("get", "/api/v1/admin/dlq", None, (401, 403, 403, 403, 200, 200, 200)),
    ("get", "/api/v1/admin/dlq/{letter}", None, (401, 403, 403, 403, 200, 200, 200)),
    ("post", "/api/v1/admin/dlq/{letter}/retry", {}, (401, 403, 403, 403, 403, 200, 200)),
    ("delete", "/api/v1/admin/dlq/{letter}", None, (401, 403, 403, 403, 403, 200, 200)),
    ("get", "/api/v1/admin/circuits", None, (401, 200, 200, 200, 200, 200, 200)),
    ("get", "/api/v1/", None, (200, 200, 200, 200, 200, 200, 200)),
    ("get", "/api/schema", None, (401, 200, 200, 200, 200, 200, 200)),
]

PAGES = [
    ("get", "/dashboard/", None, (LOGIN, 200, 200, 200, 200, 200, 200)),
    ("get", "/dashboard/executions/{running}", None, (LOGIN, 200, 404, 404, 200, 200, 200)),
    ("get", "/dashboard/executions/{running}/live", None, (LOGIN, 200, 404, 404, 200, 200, 200)),
    ("post", "/dashboard/executions/{running}/cancel", None, (LOGIN, 302, 404, 404, 403, 302, 302)),
    ("post", "/dashboard/executions/{failed}/rerun", None, (LOGIN, 302, 404, 404, 403, 302, 302)),
    (
        "post",
        "/dashboard/executions/{failed}/retrigger",
        {"params": "{}"},
        (LOGIN, 302, 404, 404, 403, 302, 302),
    ),
    ("get", "/dashboard/workflows", None, (LOGIN, 200, 200, 200, 200, 200, 200)),
    ("get", "/dashboard/workflows/{workflow}", None, (LOGIN, 200, 404, 404, 200, 200, 200)),
    (
        "post",
        "/dashboard/workflows/{workflow}/trigger",
        {"params": "{}"},
        (LOGIN, 302, 404, 404, 403, 302, 302),
    ),
    ("get", "/dashboard/handlers", None, (LOGIN, 200, 200, 200, 200, 200, 200)),
    ("get", "/dashboard/dlq", None, (LOGIN, 403, 403, 403, 200, 200, 200)),
    ("post", "/dashboard/dlq/{letter}/retry", None, (LOGIN, 403, 403, 403, 403, 302, 302)),
    ("post", "/dashboard/dlq/{letter}/discard", None, (LOGIN, 403, 403, 403, 403, 302, 302)),
    ("get", "/metrics", None, (401, 401, 401, 200, 401, 200, 200)),
    ("get", "/docs", None, (LOGIN, 200, 200, 200, 200, 200, 200)),
    ("get", "/admin/", None, (LOGIN, LOGIN, LOGIN, 200, LOGIN, 200, 200)),
    ("get", "/admin/workflows/execution/", None, (LOGIN, LOGIN, LOGIN, 403, LOGIN, 200, 200)),
    (
        "get",
        "/admin/workflows/execution/{running}/change/",
        None,
        (LOGIN, LOGIN, LOGIN, 403, LOGIN, 200, 200),
    ),
    ("get", "/admin/dlq/deadletter/", None, (LOGIN, LOGIN, LOGIN, 403, LOGIN, 200, 200)),
    (
        "post",
        "/admin/workflows/execution/",
        {"action": "cancel_selected", "_selected_action": "{running}"},
        (LOGIN, LOGIN, LOGIN, 403, LOGIN, 302, 302),
    ),
    (
        "post",
        "/admin/dlq/deadletter/",
        {"action": "discard_selected", "_selected_action": "{letter}"},
        (LOGIN, LOGIN, LOGIN, 403, LOGIN, 302, 302),
    ),
]


def api_client(user) -> APIClient:
    return APIClient() if user is None else token_client(user)


def page_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def matrix(rows):
    """One case per row and caller; the `caller` fixture makes the user."""
    return pytest.mark.parametrize(
        ("method", "url", "body", "caller", "expected"),
        [
            pytest.param(method, url, body, actor, codes[i], id=f"{actor}-{method}-{url}")
            for method, url, body, codes in rows
            for i, actor in enumerate(ACTORS)
        ],
        indirect=["caller"],
    )


@matrix(API)
def test_api(objects, caller, method, url, body, expected, django_capture_on_commit_callbacks):
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(api_client(caller), method)(objects.url(url), body, format="json")

    assert response.status_code == expected, response.content[:300]
    assert_changed_only_when_allowed(method, expected, before)


@matrix(PAGES)
def test_page(objects, caller, method, url, body, expected, django_capture_on_commit_callbacks):
    data = {key: objects.url(value) for key, value in (body or {}).items()}
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(page_client(caller), method)(objects.url(url), data)

    if expected == LOGIN:
        assert response.status_code == 302 and "login/?next=" in response["Location"], response
    else:
        assert response.status_code == expected, response.content[:300]
    assert_changed_only_when_allowed(method, expected, before)


def assert_changed_only_when_allowed(method: str, expected: int | str, before: tuple) -> None:
    """A write that was let through changed something; one that was refused changed nothing."""
    if method != "get" and expected in {200, 201, 202, 302}:
        assert snapshot() != before
    else:
        assert snapshot() == before


def test_lists_show_others_objects_only_to_holders_of_the_view_permissions(objects, bob, operator):
    for user, sees_alices in [(bob, False), (operator, True)]:
        client = api_client(user)
        executions = {row["execution_id"] for row in client.get("/api/v1/executions").json()["results"]}
        workflows = {row["id"] for row in client.get("/api/v1/workflows").json()["results"]}
        assert (str(objects.running.pk) in executions) is sees_alices
        assert (str(objects.running.workflow_id) in workflows) is sees_alices


def test_a_refusal_names_the_permission_it_takes(objects, django_user_model):
    viewer = django_user_model.objects.create_user("vera", password="vera-password-1")
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=VIEWER_PERMISSIONS))

    response = api_client(viewer).delete(f"/api/v1/workflow/{objects.running.pk}")

    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": "you may not cancel another user's execution: it takes the "
        "workflows.cancel_any_execution permission",
        "details": {"permission": "workflows.cancel_any_execution"},
    }


def test_the_operators_group_holds_every_operator_permission(operator):
    assert operator.get_all_permissions() >= {
        "workflows.view_execution",
        "workflows.view_workflow",
        "workflows.cancel_any_execution",
        "workflows.run_any_execution",
        "dlq.view_deadletter",
        "dlq.change_deadletter",
    }
