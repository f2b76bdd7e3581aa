"""Schemathesis against the API's own OpenAPI schema, in-process (WSGI, no network): whatever it
generates from the schema, valid or not, for every operation, the API answers without a 5xx.

The requests carry alice's token, so they reach the views rather than stopping at 401. Issue 17
makes the schema the whole contract and runs every check; this one holds from now on."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from tests.conftest import token_client

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI handler closes database connections after each request; Django's test client
    stops it from doing so (the test's transaction lives on that connection), and so does this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def alice_token(alice, streams) -> str:
    return token_client(alice)._credentials["HTTP_AUTHORIZATION"]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_reaches_a_server_error(case, alice_token):
    case.call_and_validate(
        headers={"Authorization": alice_token}, checks=[schemathesis.checks.not_a_server_error]
    )
