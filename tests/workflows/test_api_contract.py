"""The OpenAPI schema is the API's contract. Schemathesis generates requests from it, valid and
invalid, for every operation (examples, coverage and fuzzing phases), and follows its links
from answer to operation (the stateful phase: submit -> trigger -> status -> results ->
cancel, a dead letter -> retry), in-process over WSGI. Every check must hold on every answer:
no 5xx, every status and content type documented, every body as the schema says, invalid input
refused, valid input accepted, auth not ignored, and so on.

The requests carry the operator's token (who may do everything, dead letters included) and a
failed execution with an open dead letter exists, so that generated requests and links reach
real objects instead of stopping at 401, 403 or 404."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from workflows.api.authentication import CachedTokenAuthentication

# Valid input the API refuses all the same, rightly: an Idempotency-Key that generated requests
# happen to reuse with another body (422).
VALID_REFUSED = ["2xx", "401", "403", "404", "409", "422", "429"]
# A definition can fit the schema and still be refused with 400: a cycle, a dependency on a node
# that does not exist, a template naming a node that is not an ancestor. No JSON Schema says
# that, so for the two operations that take a definition, 400 counts as handling valid input.
DAG_SEMANTICS = [*VALID_REFUSED, "400"]
# The operator's token, made with this key by `operator_token`; schemathesis sends it (and leaves
# it out, or spoils it, to check that authentication is not ignored).
TOKEN_KEY = "c0ffee" * 6 + "0000"
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"tokenAuth": {"api_key": f"Token {TOKEN_KEY}"}}},
        # NUL is refused anywhere in a request (tests/workflows/test_hostile_input.py says so).
        "generation": {"mode": "all", "max-examples": 20, "allow-x00": False},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": VALID_REFUSED},
            # Nothing in this API deletes: DELETE cancels an execution or discards a dead letter,
            # and both stay readable for the record (the schema's descriptions say so).
            "use_after_free": {"enabled": False},
        },
        "operations": [
            {
                "include-operation-id": ["workflow_submit", "workflow_run"],
                "checks": {"positive_data_acceptance": {"expected-statuses": DAG_SEMANTICS}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=CONFIG
)
schema.app = get_wsgi_application()
HYPOTHESIS = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))

pytestmark = [pytest.mark.usefixtures("own_streams", "fast_password_hashing")]


@pytest.fixture
def keep_the_test_connection(failed_execution):
    """The WSGI handler closes database connections after each request; Django's test client
    stops it from doing so (the test's transaction lives on that connection), and so does this.
    After `failed_execution`, made through the test client, which reconnects them when done."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def operator_token(operator, streams) -> None:
    """The key is the same in every test, its user is not: no process may remember the last one."""
    CachedTokenAuthentication.cache.clear()
    Token.objects.create(user=operator, key=TOKEN_KEY)


@pytest.mark.django_db
@schema.parametrize()
@HYPOTHESIS
@pytest.mark.usefixtures("keep_the_test_connection")
def test_every_answer_keeps_the_contract(case, operator_token):
    case.call_and_validate()


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
def test_following_the_links_keeps_the_contract(operator_token):
    succeeded = set()

    class Links(schema.as_state_machine()):
        def after_call(self, response, case):
            super().after_call(response, case)
            if response.status_code < 300:
                succeeded.add(case.operation.definition.raw["operationId"])

    Links.run(settings=settings(HYPOTHESIS, max_examples=80, stateful_step_count=6, derandomize=True))

    # The links reached real objects: a submitted execution's id, the failed execution's dead letter.
    assert succeeded & {"execution_trigger", "execution_status", "execution_results", "execution_cancel"}
    assert succeeded & {"dead_letter_retry", "dead_letter_discard"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("get", "/api/v1/workflow/0", "execution"),
        ("get", "/api/v1/workflow/0/results", "execution"),
        ("delete", "/api/v1/workflow/0", "execution"),
        ("post", "/api/v1/workflow/trigger/0", "execution"),
        ("get", "/api/v1/executions/0/", "execution"),
        ("get", "/api/v1/executions/0/tasks/", "execution"),
        ("get", "/api/v1/workflows/0/", "workflow"),
        ("post", "/api/v1/workflows/0/executions/", "workflow"),
        ("get", "/api/v1/admin/dlq/0/", "dead letter"),
        ("post", "/api/v1/admin/dlq/x/retry/", "dead letter"),
        ("get", "/api/v1/no/such/path", "path"),
    ],
)
def test_every_404_says_not_found_and_what_was_looked_for(operator_client, method, path, names):
    """One code for "nothing here", whichever layer answers, and a message naming the right thing."""
    response = getattr(operator_client, method)(path, format="json")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert f"no {names}" in response.json()["error"]["message"] or names == "path"
