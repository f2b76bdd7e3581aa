"""Shared fixtures: real PostgreSQL (pytest-django's test database) and real Redis, with a
stream prefix unique to each test so tests never see each other's messages."""

import uuid

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from workflows import streams as streams_module


def pytest_sessionstart(session):
    if connection.vendor != "postgresql":
        pytest.exit("tests need PostgreSQL: set DATABASE_URL (see README, `make test`)", returncode=2)


@pytest.fixture
def stream_prefix(settings) -> str:
    """A fresh stream prefix for this test; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.STREAM_PREFIX = prefix
    yield prefix
    client = streams_module.redis_client()
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def streams(stream_prefix):
    s = streams_module.get_streams()
    s.ensure_groups()
    return s


@pytest.fixture
def alice(django_user_model):
    """An ordinary API user."""
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    """Another ordinary user, who must not see alice's executions."""
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def operator(django_user_model):
    """A staff user (sees everything)."""
    return django_user_model.objects.create_user("olga", password="olga-password-1", is_staff=True)


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def alice_client(alice) -> APIClient:
    return token_client(alice)


@pytest.fixture
def bob_client(bob) -> APIClient:
    return token_client(bob)


@pytest.fixture
def operator_client(operator) -> APIClient:
    return token_client(operator)
