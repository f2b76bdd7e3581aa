"""Failed sign-ins limited per account and per address: the admin's login, the browsable API's
login, and the form the dashboard's login uses. Once spent, even the right password is refused
until the window passes."""

import pytest
import redis
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from redis.backoff import NoBackoff
from redis.retry import Retry

from workflows import request_limits
from workflows.login_limits import RateLimitedAdminAuthenticationForm, RateLimitedAuthenticationForm
from workflows.streams import Streams

pytestmark = pytest.mark.django_db

# A fixed clock at the start of a five-minute window.
NOW = 1_800_000_000.0
REFUSED = "Too many failed sign-ins for this account or address; try again in"


@pytest.fixture(autouse=True)
def own_streams(streams):
    """Counters live under the test's own prefix: no other test (or run) shares them."""
    return streams


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def short_windows(settings, monkeypatch):
    """Windows of 30 s, on a clock the test moves."""
    settings.LOGIN_FAILURES_PER_USER = "5/30s"
    settings.LOGIN_FAILURES_PER_ADDRESS = "20/30s"
    clock = {"now": NOW}
    monkeypatch.setattr(request_limits, "clock", lambda: clock["now"])
    return clock


def sign_in(path: str, username: str, password: str, address: str):
    """A fresh browser posting the login form; its answer (302 when signed in)."""
    return Client(REMOTE_ADDR=address).post(
        path, {"username": username, "password": password, "next": "/admin/"}
    )


def refused(response) -> bool:
    return response.status_code == 200 and REFUSED in response.content.decode()


def test_the_admin_login_refuses_even_the_right_password_after_many_wrong_ones(operator, short_windows):
    wrong = [sign_in("/admin/login/", "olga", f"guess-{n}", "10.3.0.1") for n in range(100)]

    assert [w.status_code for w in wrong] == [200] * 100  # the form again, every time
    assert [refused(w) for w in wrong] == [False] * 5 + [True] * 95
    assert "try again in 30 seconds." in wrong[-1].content.decode()
    right = sign_in("/admin/login/", "olga", "olga-password-1", "10.3.0.1")
    assert refused(right)
    assert "_auth_user_id" not in right.wsgi_request.session

    short_windows["now"] += 30  # the window passes

    assert sign_in("/admin/login/", "olga", "olga-password-1", "10.3.0.1").status_code == 302


def test_another_user_from_another_address_is_not_affected(operator, django_user_model):
    django_user_model.objects.create_user("pat", password="pat-password-1", is_staff=True)
    for n in range(100):
        sign_in("/admin/login/", "olga", f"guess-{n}", "10.3.0.2")

    assert sign_in("/admin/login/", "pat", "pat-password-1", "10.3.0.3").status_code == 302


def test_the_account_is_refused_from_any_address(operator):
    for n in range(5):
        sign_in("/admin/login/", "olga", f"guess-{n}", f"10.3.1.{n}")

    assert refused(sign_in("/admin/login/", "olga", "olga-password-1", "10.3.1.99"))


def test_the_address_is_refused_for_any_account(operator, django_user_model):
    django_user_model.objects.create_user("pat", password="pat-password-1", is_staff=True)
    for n in range(20):
        sign_in("/admin/login/", f"nobody-{n}", "guess", "10.3.0.4")  # 20 accounts, once each

    assert refused(sign_in("/admin/login/", "pat", "pat-password-1", "10.3.0.4"))
    assert sign_in("/admin/login/", "pat", "pat-password-1", "10.3.0.5").status_code == 302


def test_the_browsable_apis_login_is_limited_too(alice):
    path = reverse("rest_framework:login")
    for n in range(5):
        sign_in(path, "alice", f"guess-{n}", "10.3.0.6")

    assert refused(sign_in(path, "alice", "alice-password-1", "10.3.0.6"))


def test_a_right_password_of_an_account_that_may_not_sign_in_is_no_failure(alice):
    for _ in range(10):  # alice is not staff: the admin says no, but her password was right
        response = sign_in("/admin/login/", "alice", "alice-password-1", "10.3.0.7")
        assert response.status_code == 200 and not refused(response)


def test_the_admin_uses_the_limited_form():
    assert admin.site.login_form is RateLimitedAdminAuthenticationForm


def test_the_form_for_other_login_views_limits_and_counts(alice):
    factory = RequestFactory()

    def form(password: str) -> RateLimitedAuthenticationForm:
        request = factory.post("/dashboard/login/", REMOTE_ADDR="10.3.0.8")
        return RateLimitedAuthenticationForm(request, data={"username": "alice", "password": password})

    assert form("alice-password-1").is_valid()
    assert [form(f"guess-{n}").is_valid() for n in range(6)] == [False] * 6
    refusal = form("alice-password-1")
    assert not refusal.is_valid()
    assert refusal.non_field_errors() == [
        "Too many failed sign-ins for this account or address; try again in 30 seconds."
    ]
    assert refusal.errors.as_data()["__all__"][0].code == "too_many_failed_sign_ins"


def test_without_rates_sign_ins_are_not_limited(operator, settings):
    settings.LOGIN_FAILURES_PER_USER = "0"
    settings.LOGIN_FAILURES_PER_ADDRESS = None
    for n in range(30):
        sign_in("/admin/login/", "olga", f"guess-{n}", "10.3.0.9")

    assert sign_in("/admin/login/", "olga", "olga-password-1", "10.3.0.9").status_code == 302


def test_redis_unreachable_lets_sign_ins_through(operator, monkeypatch, stream_prefix):
    unreachable = Streams(redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0)), stream_prefix)
    monkeypatch.setattr(request_limits, "get_streams", lambda: unreachable)
    monkeypatch.setattr(request_limits, "outage_log", request_limits.OutageLog())  # this outage is the test's
    for n in range(10):
        sign_in("/admin/login/", "olga", f"guess-{n}", "10.3.0.10")

    assert sign_in("/admin/login/", "olga", "olga-password-1", "10.3.0.10").status_code == 302


def test_the_dashboards_login_is_limited_too(alice):
    path = reverse("dashboard-login")
    for n in range(5):
        sign_in(path, "alice", f"guess-{n}", "10.3.0.9")

    assert refused(sign_in(path, "alice", "alice-password-1", "10.3.0.9"))
