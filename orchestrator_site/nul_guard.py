"""NUL characters in a query string or a form body are answered 400 before any view runs.

PostgreSQL refuses NUL in every text value it is sent, so a `?handler=%00` reaching any filter or
a form field reaching any save would be a 500. No legitimate value holds one; closing the class
here covers the API, the dashboard and the admin at once. The raw query string and form body are
searched, not parsed: parsing here would preempt the API's own answers to a request with too many
fields (413 in its error shape). JSON bodies are checked where they are parsed
(`dag.check_json_value`)."""

from urllib.parse import unquote

from django.http import HttpResponseBadRequest, JsonResponse

from workflows.api.errors import error_body

NUL = "%00"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


class NulGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = _nul_field(request.META.get("QUERY_STRING", ""))
        if field is None and _is_page_post(request):
            field = _nul_form_field(request)
        if field is None:
            return self.get_response(request)
        message = f"{field!r}: a NUL character (%00) is not allowed in a parameter"
        if request.path.startswith("/api/"):
            return JsonResponse(error_body("invalid_request", message, {"parameter": field}), status=400)
        return HttpResponseBadRequest(message, content_type="text/plain")


def _is_page_post(request) -> bool:
    """A form posted to the pages (the dashboard, the admin); the API takes JSON only."""
    return request.method == "POST" and not request.path.startswith("/api/")


def _nul_form_field(request) -> str | None:
    if request.content_type == FORM:
        return _nul_field(request.body.decode("latin-1"))
    if request.content_type == MULTIPART:  # parsed as the view would (no page takes files)
        return next((key for key, values in request.POST.lists() if any("\x00" in v for v in values)), None)
    return None


def _nul_field(encoded: str) -> str | None:
    """The name of the first field of an urlencoded string holding a NUL, or None."""
    if NUL not in encoded:
        return None
    for pair in encoded.split("&"):
        if NUL in pair:
            return unquote(pair.partition("=")[0].replace(NUL, ""))[:100]
    return None
