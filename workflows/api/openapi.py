"""How the OpenAPI schema tells the whole contract: every error status an operation can answer,
in the one error shape, and the links a client (or schemathesis's stateful phase) follows from
one answer to the next operation.

The error statuses follow from what the operation takes, as the API's own layers decide them:
authentication (401), throttling and long-poll bounds (429), an unreachable Redis or database
(503), a body (400, 413, 415), a query (400), an id in the path (404), an Idempotency-Key (400
for a malformed key, 422 for a reused one).
A view names its 409 itself (`CONFLICT`), as only some state changes can conflict.
"""

from django.conf import settings
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from workflows.api.contract import ErrorBody
from workflows.handlers import handler_names
from workflows.idempotency import HEADER

ERRORS = {
    "400": "The request is invalid; `error.code` and `error.details` say how.",
    "401": "No token, or a token that is not valid.",
    "403": "The token's user may not do this (a permission, or another user's execution).",
    "404": "Nothing with this id that the caller may see.",
    "409": "The execution or dead letter is not in a state that allows this.",
    "413": "The body is larger than DAG_MAX_PAYLOAD_BYTES.",
    "415": "The body is not JSON (send `Content-Type: application/json`).",
    "422": "The Idempotency-Key was first sent with another request.",
    "429": "Too many requests, long polls or open executions; retry after `Retry-After` seconds.",
    "503": "Redis or PostgreSQL is unreachable or busy; retry after `Retry-After` seconds.",
}


def conflict(description: str) -> OpenApiResponse:
    """The 409 of a view whose change depends on the current state, in its own words."""
    return OpenApiResponse(ErrorBody, description=description)


class ContractSchema(AutoSchema):
    """drf-spectacular's schema, with each operation's error responses added."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_statuses():
            if code not in responses:
                error = OpenApiResponse(ErrorBody, description=ERRORS[code])
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return dict(sorted(responses.items()))

    def _error_statuses(self) -> list[str]:
        codes = ["429", "503"]
        if not self._is_public():
            codes += ["401", "403"]
        parameters = self._get_parameters()
        if self._get_request_body() is not None:
            codes += ["400", "413", "415"]
        if any(parameter["in"] == "query" for parameter in parameters):
            codes.append("400")
        if any(parameter["in"] == "path" for parameter in parameters):
            codes.append("404")
        if any(parameter["name"] == HEADER for parameter in parameters):
            codes += ["400", "422"]
        return codes

    def _is_public(self) -> bool:
        return all(
            getattr(permission, "__name__", "") == "AllowAny" for permission in self.view.permission_classes
        )


# Links: from an answer's field to the operations that take it. operationId -> {link: (target
# operationId, {target parameter: runtime expression})}, on the operation's success response.
EXECUTION_ID = "$response.body#/execution_id"
EXECUTION_LINKS = {
    "status": ("execution_status", {"execution_id": EXECUTION_ID}),
    "results": ("execution_results", {"execution_id": EXECUTION_ID}),
    "tasks": ("execution_tasks", {"id": EXECUTION_ID}),
    "cancel": ("execution_cancel", {"execution_id": EXECUTION_ID}),
}
LINKS = {
    "workflow_submit": {
        "trigger": ("execution_trigger", {"execution_id": EXECUTION_ID}),
        "workflow": ("workflow_get", {"id": "$response.body#/workflow_id"}),
        **EXECUTION_LINKS,
    },
    "workflow_new_execution": {"trigger": ("execution_trigger", {"execution_id": EXECUTION_ID})},
    "execution_trigger": EXECUTION_LINKS,
    "workflow_run": EXECUTION_LINKS,
    "execution_cancel": {
        "rerun": ("execution_rerun", {"execution_id": EXECUTION_ID}),
        "retrigger": ("execution_retrigger", {"execution_id": EXECUTION_ID}),
    },
    "workflow_get": {"new_execution": ("workflow_new_execution", {"id": "$response.body#/id"})},
    "dead_letters_list": {
        "retry": ("dead_letter_retry", {"id": "$response.body#/results/0/id"}),
        "discard": ("dead_letter_discard", {"id": "$response.body#/results/0/id"}),
    },
}
# Components whose objects take no key but theirs: the API refuses any other (400).
CLOSED_OBJECTS = ("WorkflowDefinition", "DagNodes", "Node", "RetryPolicy", "RunInput")


def add_contract(result: dict, generator, request, public: bool) -> dict:
    """Postprocessing hook: links between operations, the handlers this deployment has, the
    node limit, and the closed objects of the DAG."""
    operations = {
        operation["operationId"]: operation
        for path in result["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for source, links in LINKS.items():
        for code, response in operations[source]["responses"].items():
            if code.startswith("2"):
                response["links"] = {
                    name: {"operationId": target, "parameters": parameters}
                    for name, (target, parameters) in links.items()
                }
    schemas = result["components"]["schemas"]
    for name in CLOSED_OBJECTS:
        schemas[name]["additionalProperties"] = False
    schemas["Node"]["properties"]["handler"]["enum"] = sorted(handler_names())
    schemas["DagNodes"]["properties"]["nodes"]["maxItems"] = settings.DAG_MAX_NODES
    return result
