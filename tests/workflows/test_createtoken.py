"""`manage.py createtoken USER`: print (or create) a user's API token, rotate or revoke it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def createtoken(*args) -> str:
    out = StringIO()
    call_command("createtoken", *args, stdout=out)
    return out.getvalue().strip()


def test_createtoken_prints_a_token_that_authenticates_the_user(alice):
    key = createtoken("alice")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert createtoken("alice") == key  # asked again: the same token
    assert client.get("/api/v1/executions").status_code == 200


def test_rotate_replaces_the_token(alice):
    old = createtoken("alice")

    new = createtoken("alice", "--rotate")

    assert new != old
    assert list(Token.objects.filter(user=alice).values_list("key", flat=True)) == [new]


def test_revoke_deletes_the_token(alice):
    createtoken("alice")

    assert createtoken("alice", "--revoke") == "token of 'alice' revoked"
    assert not Token.objects.filter(user=alice).exists()


def test_an_unknown_user_is_an_error():
    with pytest.raises(CommandError, match="no active user 'nobody'"):
        createtoken("nobody")
