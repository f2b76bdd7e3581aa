"""`@idempotent` for the API's creating views: their `Idempotency-Key` header, through
`workflows.idempotency`. A request without the header runs as before, with no extra query."""

import functools

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from workflows import idempotency
from workflows.idempotency import HEADER, Answer

KEY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "pattern": f"^{idempotency.KEY.pattern}$"},
    OpenApiParameter.HEADER,
    description="Send the same key (1 to 255 printable ASCII characters) with a retry of this "
    "request: it gets the first answer again (with `Idempotent-Replayed: true`) and nothing is "
    "created or started twice. Remembered IDEMPOTENCY_TTL_HOURS per user; the same key with "
    "another body answers 422 `idempotency_key_reused`.",
)


def idempotent(view_method):
    """A view method answering a retry of the same request under the same key with its first answer."""

    @functools.wraps(view_method)
    def answer_once(view, request: Request, *args, **kwargs) -> Response:
        raw = request.headers.get(HEADER)
        if raw is None:
            return view_method(view, request, *args, **kwargs)
        key = idempotency.idempotency_key_parse(raw)
        # Read before the view parses it: DRF's parsers consume the stream.
        fingerprint = idempotency.request_fingerprint(
            method=request.method, path=request.path, body=request.body
        )

        def answer() -> Answer:
            response = view_method(view, request, *args, **kwargs)
            return Answer(response.status_code, response.data)

        given = idempotency.idempotent_answer(
            user=request.user, key=key, fingerprint=fingerprint, answer=answer
        )
        return Response(
            given.body,
            status=given.status_code,
            headers={"Idempotent-Replayed": "true"} if given.replayed else None,
        )

    return extend_schema(parameters=[KEY_PARAMETER])(answer_once)
